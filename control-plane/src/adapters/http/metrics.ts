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
}

export function createMetrics(options: {
  deviceCounts?: () => Promise<Record<string, number>>;
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
  };
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
