/**
 * What the drift API and `fleet drift status` show: per model version and
 * cohort, the scored windows over time (each with its sample counts, every
 * signal's distances and the drifted flags), the cumulative view, and the
 * open alert; and the alerts themselves. Reads only.
 *
 * A model without a version means its newest release that has drift
 * scores, or its newest release when none has.
 */
import type { AlertRow, CumulativeRow, DriftStore, WindowRow } from '../adapters/db/drift-store.ts';
import type { ModelStore, ModelVersionRow } from '../adapters/db/model-store.ts';
import { controlPlaneError } from '../core/errors.ts';
import type { SignalScore } from '../core/drift/cohort-score.ts';
import type { AlertSignal } from '../core/drift/window-scoring.ts';
import type { DriftPolicy } from '../core/drift/drift-policy.ts';
import type { DriftGaugeSnapshot } from '../adapters/http/metrics.ts';

export interface DriftStatusQuery {
  model: string;
  version?: string;
  cohort?: string;
  since: Date;
  /** Newest windows per cohort. */
  limit: number;
}

export interface DriftScoreView {
  verdict: 'drifted' | 'clean' | 'insufficient';
  flushes: number;
  sampled: number;
  inferences: number;
  driftedShare: number;
  driftedSignals: string[];
  signals: SignalScore[];
}

export interface DriftWindowView extends DriftScoreView {
  start: string;
  end: string;
  devices: number;
}

export interface DriftAlertView {
  id: string;
  model: { name: string; version: string; release: number; bundleId: string };
  cohort: string;
  window: { start: string; end: string };
  driftedShare: number;
  signals: AlertSignal[];
  openedAt: string;
  cleared: { at: string; windowEnd: string } | null;
}

export interface DriftStatus {
  model: { name: string; version: string; release: number; bundleId: string };
  windowMs: number;
  cohorts: Array<{
    cohort: string;
    windows: DriftWindowView[];
    cumulative: (DriftScoreView & { updatedAt: string }) | null;
    alert: DriftAlertView | null;
  }>;
}

export interface DriftReports {
  status(query: DriftStatusQuery): Promise<DriftStatus>;
  /** The drift gauges' values (metrics.ts), read from the database at scrape time. */
  gauges(): Promise<DriftGaugeSnapshot>;
  alerts(query: {
    model?: string;
    version?: string;
    open?: boolean;
    limit: number;
  }): Promise<DriftAlertView[]>;
}

function scoreView(row: WindowRow | CumulativeRow): DriftScoreView {
  return {
    verdict: row.verdict,
    flushes: row.flushes,
    sampled: row.sampled,
    inferences: row.inferences,
    driftedShare: row.driftedShare,
    driftedSignals: row.driftedSignals,
    signals: row.signalScores,
  };
}

export function alertView(row: AlertRow): DriftAlertView {
  return {
    id: row.id,
    model: {
      name: row.modelName,
      version: row.modelVersion,
      release: row.modelRelease,
      bundleId: row.bundleId,
    },
    cohort: row.cohort,
    window: { start: row.windowStart.toISOString(), end: row.windowEnd.toISOString() },
    driftedShare: row.driftedShare,
    signals: row.signals,
    openedAt: row.openedAt.toISOString(),
    cleared:
      row.clearedAt && row.clearedWindowEnd
        ? { at: row.clearedAt.toISOString(), windowEnd: row.clearedWindowEnd.toISOString() }
        : null,
  };
}

/** Gauges show cohorts whose latest window ended within this many windows (and grace). */
const GAUGE_HORIZON_WINDOWS = 5;

export function createDriftReports(deps: {
  store: DriftStore;
  models: Pick<ModelStore, 'listVersions'>;
  policy: Pick<DriftPolicy, 'windowMs' | 'graceMs'>;
  nowMs: () => number;
}): DriftReports {
  const { store, policy } = deps;

  async function resolve(name: string, version: string | undefined): Promise<ModelVersionRow> {
    const versions = await deps.models.listVersions(name); // newest first
    if (versions.length === 0) throw controlPlaneError('NOT_FOUND', `no model ${name}`);
    if (version !== undefined) {
      const row = versions.find((v) => v.version === version);
      if (!row) throw controlPlaneError('NOT_FOUND', `no version ${version} of ${name}`);
      return row;
    }
    for (const row of versions) if (await store.hasScores(row.bundleId)) return row;
    return versions[0]!;
  }

  return {
    async status(query) {
      const row = await resolve(query.model, query.version);
      const cumulative = await store.cumulative(row.bundleId, query.cohort);
      const open = (
        await store.alerts({
          modelName: row.name,
          modelVersion: row.version,
          open: true,
          limit: 1000,
        })
      ).filter((a) => a.bundleId === row.bundleId);
      const cohorts = new Set([...cumulative.map((c) => c.cohort), ...open.map((a) => a.cohort)]);
      if (query.cohort !== undefined) cohorts.add(query.cohort);
      const out: DriftStatus['cohorts'] = [];
      for (const cohort of [...cohorts]
        .filter((c) => query.cohort === undefined || c === query.cohort)
        .sort()) {
        const windows = await store.windows(row.bundleId, {
          cohort,
          since: query.since,
          limit: query.limit,
        });
        const total = cumulative.find((c) => c.cohort === cohort);
        const alert = open.find((a) => a.cohort === cohort);
        out.push({
          cohort,
          windows: windows.map((w) => ({
            start: w.windowStart.toISOString(),
            end: w.windowEnd.toISOString(),
            devices: w.devices,
            ...scoreView(w),
          })),
          cumulative: total
            ? { ...scoreView(total), updatedAt: total.updatedAt.toISOString() }
            : null,
          alert: alert ? alertView(alert) : null,
        });
      }
      return {
        model: {
          name: row.name,
          version: row.version,
          release: row.release,
          bundleId: row.bundleId,
        },
        windowMs: policy.windowMs,
        cohorts: out,
      };
    },

    async gauges() {
      const now = deps.nowMs();
      const since = new Date(now - GAUGE_HORIZON_WINDOWS * policy.windowMs - policy.graceMs);
      const [latest, open] = await Promise.all([store.latestWindows(since), store.openAlerts()]);
      const cohorts = new Map<string, DriftGaugeSnapshot['cohorts'][number]>();
      const distances: DriftGaugeSnapshot['distances'] = [];
      for (const w of latest) {
        const labels = { model: w.modelName, version: w.modelVersion, cohort: w.cohort };
        cohorts.set(JSON.stringify(labels), { ...labels, drifted: false });
        for (const signal of w.signalScores) {
          for (const [metric, value] of Object.entries(signal.distances)) {
            distances.push({ ...labels, signal: signal.name, metric, value });
          }
        }
      }
      for (const a of open) {
        const labels = { model: a.modelName, version: a.modelVersion, cohort: a.cohort };
        cohorts.set(JSON.stringify(labels), { ...labels, drifted: true });
      }
      return { cohorts: [...cohorts.values()], distances };
    },

    async alerts(query) {
      if (query.model !== undefined && (await deps.models.listVersions(query.model)).length === 0) {
        throw controlPlaneError('NOT_FOUND', `no model ${query.model}`);
      }
      const rows = await store.alerts({
        limit: query.limit,
        ...(query.model !== undefined ? { modelName: query.model } : {}),
        ...(query.version !== undefined ? { modelVersion: query.version } : {}),
        ...(query.open !== undefined ? { open: query.open } : {}),
      });
      return rows.map(alertView);
    },
  };
}
