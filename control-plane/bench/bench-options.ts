/**
 * The control-plane bench's settings, read once from its command line
 * (`--duration 10 --connections 50 ...`); the entry file passes in what it
 * reads from the environment.
 */
import { parseArgs } from 'node:util';

export type Backend = 'pglite' | 'postgres';

export interface BenchOptions {
  /** Seconds each HTTP endpoint is measured for. */
  durationS: number;
  /** Seconds of unmeasured load before each measurement. */
  warmupS: number;
  /** Concurrent HTTP connections from the load generator. */
  connections: number;
  /** Devices in the database. */
  devices: number;
  /** Devices (each with its own key) whose MQTT connects are measured. */
  mqttDevices: number;
  /**
   * Other devices that connect first, untimed, to each broker measured: the
   * broker's code is compiled and warm when the timed connects start, as the
   * HTTP runs warm up for `warmupS`. Their keys are not the measured ones, so
   * the measured connects still miss the registry's key cache.
   */
  mqttWarmupDevices: number;
  /** MQTT CONNECTs in flight at once. */
  mqttConcurrency: number;
  backends: Backend[];
  /** PostgreSQL server to create the scratch database on (its database: the one to connect to). */
  postgresAdminUrl: string;
}

export const DEFAULT_POSTGRES_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

function positiveInt(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new Error(`--${name}: a positive whole number, not ${JSON.stringify(text)}`);
  }
  return value;
}

function zeroOrPositiveInt(name: string, text: string): number {
  return Number(text) === 0 ? 0 : positiveInt(name, text);
}

function backendList(text: string): Backend[] {
  const names = text.split(',').map((s) => s.trim());
  for (const name of names) {
    if (name !== 'pglite' && name !== 'postgres') {
      throw new Error(`--backends: pglite and/or postgres, not ${JSON.stringify(name)}`);
    }
  }
  return names as Backend[];
}

/** Parses `argv` (without node and the script); throws naming the bad flag. */
export function parseBenchOptions(argv: string[], env: { databaseUrl?: string }): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      connections: { type: 'string', default: '50' },
      devices: { type: 'string', default: '100000' },
      'mqtt-devices': { type: 'string', default: '2000' },
      'mqtt-warmup-devices': { type: 'string', default: '500' },
      'mqtt-concurrency': { type: 'string', default: '100' },
      backends: { type: 'string', default: 'pglite,postgres' },
    },
  });
  const options: BenchOptions = {
    durationS: positiveInt('duration', values.duration),
    warmupS: zeroOrPositiveInt('warmup', values.warmup),
    connections: positiveInt('connections', values.connections),
    devices: positiveInt('devices', values.devices),
    mqttDevices: positiveInt('mqtt-devices', values['mqtt-devices']),
    mqttWarmupDevices: zeroOrPositiveInt('mqtt-warmup-devices', values['mqtt-warmup-devices']),
    mqttConcurrency: positiveInt('mqtt-concurrency', values['mqtt-concurrency']),
    backends: backendList(values.backends),
    postgresAdminUrl: env.databaseUrl || DEFAULT_POSTGRES_ADMIN_URL,
  };
  if (options.mqttDevices + options.mqttWarmupDevices > options.devices) {
    throw new Error(
      '--mqtt-devices plus --mqtt-warmup-devices: at most --devices (they are among the seeded devices)',
    );
  }
  return options;
}
