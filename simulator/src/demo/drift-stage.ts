/**
 * The demo's step 7, drift: clean windows are scored first, then a cohort
 * sees shifted digits until the control plane flags it (or a minute passes);
 * the drifted cohort's users label every answer throughout (the labelled
 * samples step 8's federated round trains on).
 */
import type { EvalData } from '@fleet/bundles';
import { formatDriftStatus, type DriftStatusView } from '@fleet/control-plane';
import type { DemoReport } from './demo-report.ts';
import type { DemoApi } from './fl-stage.ts';
import type { DigitShift } from '../fleet/digit-shift.ts';
import { startBackgroundTraffic } from '../fleet/mnist-traffic.ts';
import type { SimAgent } from '../fleet/sim-fleet.ts';

export type Traffic = ReturnType<typeof startBackgroundTraffic>;

export interface DriftStageOptions {
  api: DemoApi;
  agents: () => SimAgent[];
  /** The digits the fleet's traffic draws from. */
  field: EvalData;
  /** Stops the traffic running and starts `next` in its place. */
  replaceTraffic: (next: Traffic) => Promise<void> | undefined;
  report: DemoReport;
  out: (text: string) => void;
  /** The control plane's drift window (agents flush at least this often). */
  windowMs: number;
  /** What the drifted cohort's camera does to its digits. */
  shift: DigitShift;
  /** Whether the agent at this fleet index is in the cohort that drifts (cam-b). */
  inDriftedCohort: (index: number) => boolean;
}

/**
 * Step 7: clean drift windows first, then a fifth of the fleet sees shifted
 * digits until the control plane flags that cohort (or a minute passes).
 * cam-b's users label every answer throughout (labelled samples for step 8).
 */
export async function driftStage(stage: DriftStageOptions): Promise<void> {
  const { api, agents, field, replaceTraffic, report, out } = stage;
  const DRIFT_WINDOW_MS = stage.windowMs;
  const CAMERA_SHIFT = stage.shift;
  const status = () => api<DriftStatusView>('GET', '/v1/drift?model=mnist-2nn@1.0.0&limit=30');
  const alerts = async () =>
    (
      await api<{ alerts: Array<{ cohort: string; window: { end: string } }> }>(
        'GET',
        '/v1/drift/alerts?model=mnist-2nn@1.0.0',
      )
    ).alerts;
  const scored = (view: DriftStatusView, cohort: string) =>
    view.cohorts
      .find((c) => c.cohort === cohort)
      ?.windows.filter((w) => w.verdict !== 'insufficient') ?? [];
  let shifted = false;
  const drifted = new Set(agents().filter((_, i) => stage.inDriftedCohort(i)));
  await replaceTraffic(
    startBackgroundTraffic(agents, field, {
      perAgent: 8,
      batch: 8,
      intervalMs: 50,
      shift: (agent) => (shifted && drifted.has(agent) ? CAMERA_SHIFT : null),
      label: (agent) => drifted.has(agent),
    }),
  );
  const show = async () => {
    const view = await status();
    out(`${formatDriftStatus(view).trimEnd().replace(/^/gm, '    ')}\n`);
    return view;
  };

  report.step(
    'fleet: agents sample every inference (rollout drift rate 100%) into sketches, flushed signed every 10 s; cam-b users label their answers',
  );
  const deadline = Date.now() + 60_000;
  for (;;) {
    await new Promise((r) => setTimeout(r, DRIFT_WINDOW_MS / 2));
    const view = await show();
    if (scored(view, 'cohort=cam-a').length > 0 && scored(view, 'cohort=cam-b').length > 0) break;
    if (Date.now() > deadline) break;
  }
  const before = await status();
  const cleanWindows = ['cohort=cam-a', 'cohort=cam-b'].flatMap((c) => scored(before, c));
  report.outcome(
    'clean windows scored before the shift, none drifted',
    'yes',
    cleanWindows.length > 0 && cleanWindows.every((w) => w.verdict === 'clean')
      ? `yes (${cleanWindows.length})`
      : `no (${cleanWindows.map((w) => w.verdict).join(',') || 'none scored'})`,
  );
  report.outcome('drift alerts before the shift', '0', String((await alerts()).length));

  report.step(
    `field: ${drifted.size} devices (cohort=cam-b) now see digits rotated ${CAMERA_SHIFT.rotateDegrees}° with noise σ ${CAMERA_SHIFT.noiseSigma}`,
  );
  const changedAtMs = Date.now();
  shifted = true;
  let flagged: { cohort: string; window: { end: string } } | undefined;
  while (!flagged && Date.now() < changedAtMs + 60_000) {
    await new Promise((r) => setTimeout(r, DRIFT_WINDOW_MS / 2));
    await show();
    flagged = (await alerts()).find((a) => a.cohort === 'cohort=cam-b');
  }
  const firstWholeEnd = (Math.floor(changedAtMs / DRIFT_WINDOW_MS) + 2) * DRIFT_WINDOW_MS;
  report.outcome('drifted cohort flagged', 'cohort=cam-b', flagged?.cohort ?? 'none');
  report.outcome(
    'flagged within two windows of the change',
    'yes',
    flagged
      ? `${Date.parse(flagged.window.end) <= firstWholeEnd + DRIFT_WINDOW_MS ? 'yes' : 'no'} (window ending ${((Date.parse(flagged.window.end) - changedAtMs) / 1000).toFixed(1)} s after it)`
      : 'no',
  );
  const others = (await alerts()).filter((a) => a.cohort === 'cohort=cam-a');
  report.outcome('alerts for the unchanged cohort (cam-a)', '0', String(others.length));
}
