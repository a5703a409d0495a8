/**
 * Prometheus metrics (prom-client) in a registry of the control plane's own,
 * so two control planes in one process (tests) never share counters. Device
 * counts are read from the database at scrape time.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isFleetError } from '@fleet/protocol';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  enrolments: Counter<'result'>;
  bundleUploads: Counter<'result'>;
  deviceMessages: Counter<'topic' | 'result'>;
  mqttConnections: Gauge;
  driftFlushes: Counter<'result'>;
  driftLateFlushes: Counter;
  driftAlerts: Counter<'event'>;
  flUpdates: Counter<'result'>;
  flRounds: Counter<'status'>;
}

/** The drift gauges' values, read at scrape time (services/drift-service.ts `gauges`). */
export interface DriftGaugeSnapshot {
  /** Cohorts scored recently or with an open alert; drifted = an alert is open. */
  cohorts: Array<{ model: string; version: string; cohort: string; drifted: boolean }>;
  /** Each signal's distances in its cohort's latest window. */
  distances: Array<{
    model: string;
    version: string;
    cohort: string;
    signal: string;
    metric: string;
    value: number;
  }>;
}

export function createMetrics(options: {
  deviceCounts?: () => Promise<Record<string, number>>;
  driftGauges?: () => Promise<DriftGaugeSnapshot>;
  defaultMetrics?: boolean;
}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true)
    collectDefaultMetrics({ register: registry, prefix: 'fleet_' });
  const counts = options.deviceCounts;
  new Gauge({
    name: 'fleet_devices',
    help: 'Enrolled devices by status (online, offline, revoked)',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      if (!counts) return;
      for (const [status, n] of Object.entries(await counts())) this.set({ status }, n);
    },
  });
  registerDriftGauges(registry, options.driftGauges);
  return {
    registry,
    httpRequests: new Counter({
      name: 'fleet_http_requests_total',
      help: 'HTTP requests by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'fleet_http_request_duration_seconds',
      help: 'HTTP request latency by method and route pattern',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    enrolments: new Counter({
      name: 'fleet_enrolments_total',
      help: 'Enrolment requests by result (ok, or the refusal code)',
      labelNames: ['result'],
      registers: [registry],
    }),
    bundleUploads: new Counter({
      name: 'fleet_bundle_uploads_total',
      help: 'Bundle uploads by result (ok, or the refusal code)',
      labelNames: ['result'],
      registers: [registry],
    }),
    deviceMessages: new Counter({
      name: 'fleet_device_messages_total',
      help: 'Device messages received over MQTT by topic kind and result (ok, stale, or the refusal code)',
      labelNames: ['topic', 'result'],
      registers: [registry],
    }),
    mqttConnections: new Gauge({
      name: 'fleet_mqtt_connections',
      help: 'Devices connected to the embedded broker',
      registers: [registry],
    }),
    driftFlushes: new Counter({
      name: 'fleet_drift_flushes_total',
      help: 'Verified drift flushes by result (accepted, or why refused: replayed, seq_reused, unknown_bundle, model_mismatch, no_profile, signal_mismatch, malformed, bad_window)',
      labelNames: ['result'],
      registers: [registry],
    }),
    driftLateFlushes: new Counter({
      name: 'fleet_drift_late_flushes_total',
      help: 'Accepted drift flushes whose window was scored already (they count in the cumulative view only)',
      registers: [registry],
    }),
    driftAlerts: new Counter({
      name: 'fleet_drift_alerts_total',
      help: 'Drift alerts opened and cleared by this process',
      labelNames: ['event'],
      registers: [registry],
    }),
    flUpdates: new Counter({
      name: 'fleet_fl_updates_total',
      help: 'Verified federated updates by result: accepted, failed (the device could not train), or why refused (wrong-round, wrong-base, not-selected, replayed, duplicate, late, non-finite, over-clip, malformed, unknown-header, buffer-full)',
      labelNames: ['result'],
      registers: [registry],
    }),
    flRounds: new Counter({
      name: 'fleet_fl_rounds_total',
      help: 'Federated rounds that reached a final status in this process (promoted, rejected, failed, cancelled)',
      labelNames: ['status'],
      registers: [registry],
    }),
  };
}

/** Gauges read from the database at scrape time, so every replica reports the same. */
function registerDriftGauges(
  registry: Registry,
  snapshot: (() => Promise<DriftGaugeSnapshot>) | undefined,
): void {
  new Gauge({
    name: 'fleet_drift_cohort_drifted',
    help: '1 while a drift alert is open for the model version and cohort (* = the whole fleet), else 0',
    labelNames: ['model', 'version', 'cohort'],
    registers: [registry],
    async collect() {
      if (!snapshot) return;
      this.reset();
      for (const c of (await snapshot()).cohorts) {
        this.set({ model: c.model, version: c.version, cohort: c.cohort }, c.drifted ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'fleet_drift_signal_distance',
    help: "A signal's drift distance (psi, jensenShannon, hellinger, ks, wasserstein) in its cohort's latest scored window",
    labelNames: ['model', 'version', 'cohort', 'signal', 'metric'],
    registers: [registry],
    async collect() {
      if (!snapshot) return;
      this.reset();
      for (const d of (await snapshot()).distances) {
        const { value, ...labels } = d;
        this.set(labels, value);
      }
    },
  });
}

/**
 * Runs `work` and counts its outcome on `counter`: `result="ok"`, or the
 * FleetError code it was refused with (`error` for anything else), then
 * returns or rethrows.
 */
export async function countOutcome<T, Label extends string>(
  counter: Counter<Label>,
  labels: Partial<Record<Label, string>>,
  work: () => Promise<T>,
): Promise<T> {
  try {
    const value = await work();
    counter.inc({ ...labels, result: 'ok' } as Partial<Record<Label, string>>);
    return value;
  } catch (error) {
    const result = isFleetError(error) ? error.code : 'error';
    counter.inc({ ...labels, result } as Partial<Record<Label, string>>);
    throw error;
  }
}
