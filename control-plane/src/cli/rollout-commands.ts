/**
 * `fleet rollout create|status|pause|resume|abort`, through the control plane
 * API. `status --watch` redraws the waves and devices with progress bars
 * until the rollout is completed or aborted.
 */
import { Command } from 'commander';
import type { CliIo } from '@fleet/bundles';
import { createApiClient, type CliEnv } from './api-client.ts';
import { print, readFileArg, showOrWatch, withUrl } from './command-helpers.ts';

export interface RolloutView {
  id: string;
  model: { name: string; version: string; release: number };
  status: string;
  reason: string | null;
  currentWave: number;
  counts: Record<string, number>;
  waves: Array<{ wave: number; size: number; counts: Record<string, number> }>;
  devices?: Array<{
    deviceId: string;
    wave: number;
    status: string;
    attempts: number;
    error: { code: string; message: string } | null;
  }>;
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'rolled_back']);

/** A fixed-width bar: succeeded as `#`, failed as `x`, in flight as `-`. */
export function progressBar(counts: Record<string, number>, size: number, width = 30): string {
  if (size === 0) return `[${' '.repeat(width)}]`;
  const cells = (n: number) => Math.round((n / size) * width);
  const ok = cells(counts.succeeded ?? 0);
  const bad = Math.min(
    width - ok,
    cells((counts.failed ?? 0) + (counts.cancelled ?? 0) + (counts.rolled_back ?? 0)),
  );
  const busy = Math.min(
    width - ok - bad,
    cells((counts.sent ?? 0) + (counts.updating ?? 0) + (counts.probation ?? 0)),
  );
  return `[${'#'.repeat(ok)}${'x'.repeat(bad)}${'-'.repeat(busy)}${' '.repeat(width - ok - bad - busy)}]`;
}

/** The status screen: the rollout, one bar per wave, then the devices not yet done well. */
export function formatRollout(r: RolloutView, maxDevices = 20): string {
  const lines = [
    `rollout ${r.id}  ${r.model.name}@${r.model.version} (release ${r.model.release})  ${r.status.toUpperCase()}  wave ${r.currentWave}/${r.waves.length}`,
  ];
  if (r.reason) lines.push(`  ${r.reason}`);
  for (const w of r.waves) {
    const done = Object.entries(w.counts)
      .filter(([s]) => FINAL.has(s))
      .reduce((a, [, n]) => a + n, 0);
    const detail = Object.entries(w.counts)
      .map(([s, n]) => `${s} ${n}`)
      .join(', ');
    lines.push(`  wave ${w.wave}  ${progressBar(w.counts, w.size)}  ${done}/${w.size}  ${detail}`);
  }
  const notable = (r.devices ?? []).filter(
    (d) => d.status !== 'succeeded' && d.status !== 'pending',
  );
  for (const d of notable.slice(0, maxDevices)) {
    const error = d.error ? `  ${d.error.code}: ${d.error.message.slice(0, 80)}` : '';
    lines.push(
      `    ${d.deviceId.padEnd(24)} wave ${d.wave}  ${d.status.padEnd(11)} attempts ${d.attempts}${error}`,
    );
  }
  if (notable.length > maxDevices) lines.push(`    ... ${notable.length - maxDevices} more`);
  return `${lines.join('\n')}\n`;
}

export function rolloutCommand(
  io: CliIo,
  env: CliEnv,
  sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)),
): Command {
  const rollout = new Command('rollout').description(
    'Roll a model version out to devices, in waves',
  );
  withUrl(rollout.command('create'))
    .description('Start a rollout')
    .requiredOption('--model <name@version>', 'the model version to roll out')
    .requiredOption(
      '--target <selector>',
      '`all`, or tag:k=v, hardware:H, id:D terms joined by commas',
    )
    .option('--waves <list>', 'cumulative wave sizes, e.g. 1%,10%,50%,100% or 5,20,all')
    .option('--bake <duration>', 'time a wave must hold its success share, e.g. 10m')
    .option('--max-failure <ratio>', 'abort above this failed share, e.g. 2%')
    .option('--success <ratio>', 'share of a wave that must succeed before it advances, e.g. 95%')
    .option('--device-timeout <duration>', 'per-device time from deploy to final report')
    .option('--retries <n>', 'deploys sent again to a timed-out device')
    .option('--probation <duration>', 'how long devices watch the new model before committing')
    .option(
      '--drift-sample-rate <ratio>',
      "share of inferences sampled for drift, e.g. 10% (default: the bundle's)",
    )
    .option('--json', 'print JSON')
    .action(async (flags: Record<string, string | boolean | undefined> & { url?: string }) => {
      const api = await createApiClient(flags, env);
      const body: Record<string, string> = {
        model: String(flags.model),
        target: String(flags.target),
      };
      const map: Record<string, string> = {
        waves: 'waves',
        bake: 'bake',
        maxFailure: 'maxFailure',
        success: 'successRatio',
        deviceTimeout: 'deviceTimeout',
        retries: 'retries',
        probation: 'probation',
        driftSampleRate: 'driftSampleRate',
      };
      for (const [flag, field] of Object.entries(map)) {
        if (typeof flags[flag] === 'string') body[field] = flags[flag];
      }
      const created = await api.request<RolloutView>('POST', '/v1/rollouts', { json: body });
      if (flags.json) return print(io, created);
      io.stdout(formatRollout(created));
    });
  withUrl(rollout.command('status <id>'))
    .description('Show a rollout: waves with progress bars and devices')
    .option('--watch', 'redraw until it is completed or aborted')
    .option('--interval <ms>', 'redraw interval with --watch', '1000')
    .option('--json', 'print JSON')
    .action(
      async (
        id: string,
        flags: { url?: string; watch?: boolean; interval: string; json?: boolean },
      ) => {
        const api = await createApiClient(flags, env);
        await showOrWatch(io, {
          fetch: () => api.request<RolloutView>('GET', `/v1/rollouts/${encodeURIComponent(id)}`),
          format: formatRollout,
          json: flags.json,
          watch: flags.watch,
          intervalMs: Number(flags.interval),
          done: (view) => view.status === 'completed' || view.status === 'aborted',
          sleep,
        });
      },
    );
  for (const action of ['pause', 'resume', 'abort'] as const) {
    const command = withUrl(rollout.command(`${action} <id>`)).description(
      `${action[0]!.toUpperCase()}${action.slice(1)} a rollout`,
    );
    if (action !== 'resume') command.requiredOption('--reason <text>', 'why, for the audit log');
    command.action(async (id: string, flags: { url?: string; reason?: string }) => {
      const api = await createApiClient(flags, env);
      const view = await api.request<RolloutView>(
        'POST',
        `/v1/rollouts/${encodeURIComponent(id)}/${action}`,
        action === 'resume' ? {} : { json: { reason: flags.reason } },
      );
      io.stdout(formatRollout(view));
    });
  }
  withUrl(rollout.command('rollback <id>'))
    .description('Send a signed rollback instruction to the devices that committed this rollout')
    .requiredOption('--authorization <file>', 'the instruction from `fleet bundle sign-rollback`')
    .requiredOption('--reason <text>', 'why, for the audit log')
    .action(async (id: string, flags: { url?: string; authorization: string; reason: string }) => {
      const api = await createApiClient(flags, env);
      const authorization = JSON.parse(
        new TextDecoder().decode(await readFileArg(flags.authorization, 'authorization')),
      ) as unknown;
      print(
        io,
        await api.request('POST', `/v1/rollouts/${encodeURIComponent(id)}/rollback`, {
          json: { authorization, reason: flags.reason },
        }),
      );
    });
  return rollout;
}
