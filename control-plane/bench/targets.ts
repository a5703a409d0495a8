/**
 * The bench's targets, checked against its figures, and the list of
 * everything that went wrong in a run (errors, non-2xx answers, failed or
 * skipped parts). A target is met only when its figure was measured, beat
 * the bound, and the run behind it had no errors.
 */
import type { HttpLoadSummary } from './http-load-child.ts';
import type { BackendFigures } from './backend-run.ts';
import type { MqttConnectFigures } from './mqtt-connects.ts';

export type BackendOutcome = BackendFigures | { skipped: string } | { failed: string };

export interface TargetCheck {
  target: string;
  value: number | null;
  met: boolean;
  note?: string;
}

export const P99_TARGET_MS = 50;
export const CONNECTS_TARGET_PER_S = 1000;

function figuresOf(outcome: BackendOutcome | undefined): BackendFigures | null {
  return outcome && 'devices' in outcome ? outcome : null;
}

function measured<T extends object>(part: T | { failed: string } | undefined): T | null {
  return part && !('failed' in part) ? part : null;
}

function httpClean(s: HttpLoadSummary): boolean {
  return s.non2xx === 0 && s.errors === 0 && s.timeouts === 0 && s.emptyPages === 0;
}

function p99Target(outcome: BackendOutcome | undefined, endpoint: 'list' | 'lookup'): TargetCheck {
  const what =
    endpoint === 'list' ? 'GET /v1/devices?tag&hardware&limit=50' : 'GET /v1/devices/{id}';
  const target = `PostgreSQL ${what} p99 < ${P99_TARGET_MS} ms, without errors`;
  const summary = measured(figuresOf(outcome)?.[endpoint]);
  if (!summary) return { target, value: null, met: false, note: 'not measured' };
  const clean = httpClean(summary);
  return {
    target,
    value: summary.p99Ms,
    met: clean && summary.p99Ms < P99_TARGET_MS,
    ...(clean ? {} : { note: 'the run had errors or non-2xx answers' }),
  };
}

function connectsTarget(backend: string, outcome: BackendOutcome | undefined): TargetCheck {
  const target = `MQTT authenticated connects/s >= ${CONNECTS_TARGET_PER_S} (${backend} directory), all connected`;
  const mqtt = measured(figuresOf(outcome)?.mqtt);
  if (!mqtt) return { target, value: null, met: false, note: 'not measured' };
  const clean = mqtt.notConnected === 0;
  return {
    target,
    value: mqtt.connectsPerS,
    met: clean && mqtt.connectsPerS >= CONNECTS_TARGET_PER_S,
    ...(clean ? {} : { note: `${mqtt.notConnected} connects failed` }),
  };
}

export function checkTargets(outcomes: Record<string, BackendOutcome>): TargetCheck[] {
  const checks = [p99Target(outcomes.postgres, 'list'), p99Target(outcomes.postgres, 'lookup')];
  for (const [backend, outcome] of Object.entries(outcomes)) {
    checks.push(connectsTarget(backend, outcome));
  }
  return checks;
}

function httpProblems(where: string, s: HttpLoadSummary): string[] {
  const out: string[] = [];
  if (s.non2xx > 0) out.push(`${where}: ${s.non2xx} non-2xx (${JSON.stringify(s.statusCodes)})`);
  if (s.errors > 0) out.push(`${where}: ${s.errors} errors (${s.timeouts} timeouts)`);
  if (s.emptyPages > 0) out.push(`${where}: ${s.emptyPages} empty listing pages`);
  return out;
}

function mqttProblems(where: string, m: MqttConnectFigures): string[] {
  const out: string[] = [];
  if (m.notConnected > 0)
    out.push(`${where}: ${m.notConnected} connects failed ${JSON.stringify(m.failures)}`);
  for (const e of m.brokerErrors) out.push(`${where}: broker: ${e}`);
  return out;
}

/** Everything that went wrong, one line each; empty for a clean run. */
export function listProblems(outcomes: Record<string, BackendOutcome>): string[] {
  const problems: string[] = [];
  for (const [backend, outcome] of Object.entries(outcomes)) {
    if ('skipped' in outcome) problems.push(`${backend}: skipped: ${outcome.skipped}`);
    if ('failed' in outcome) problems.push(`${backend}: failed: ${outcome.failed}`);
    const figures = figuresOf(outcome);
    if (!figures) continue;
    for (const endpoint of ['list', 'lookup'] as const) {
      const part = figures[endpoint];
      if ('failed' in part) problems.push(`${backend} ${endpoint}: failed: ${part.failed}`);
      else problems.push(...httpProblems(`${backend} ${endpoint}`, part));
    }
    if ('failed' in figures.mqtt) problems.push(`${backend} mqtt: failed: ${figures.mqtt.failed}`);
    else problems.push(...mqttProblems(`${backend} mqtt`, figures.mqtt));
  }
  return problems;
}
