/**
 * Control-plane figures on each database backend, against the targets.
 *
 *   npm run bench:control-plane                  (from the repository root)
 *   npm run bench -w control-plane -- --duration 5 --backends postgres
 *
 * For PGlite (embedded, temp data dir) and PostgreSQL (a scratch database
 * created on `DATABASE_URL`'s server, or on postgres://postgres@127.0.0.1:5432,
 * dropped at the end), with 100,000 seeded devices: p50/p99 latency and
 * requests/s of the filtered device listing and of device lookups, 50
 * connections from autocannon in another process; then MQTT authenticated
 * connects/s against the embedded broker backed by the device registry.
 * Progress goes to stderr; the last stdout line is one JSON object.
 * See bench/README.md.
 */
import { cpus } from 'node:os';
import { benchBackend, type Log } from './backend-run.ts';
import { parseBenchOptions, type Backend, type BenchOptions } from './bench-options.ts';
import { generateBenchKeys, measurePeerConnects, type MqttBenchKeys } from './mqtt-connects.ts';
import { createScratchDatabase, redactUrl } from './scratch-postgres.ts';
import { checkTargets, listProblems, type BackendOutcome } from './targets.ts';

const log: Log = (line) => process.stderr.write(`${line}\n`);

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function benchPostgres(options: BenchOptions, keys: MqttBenchKeys): Promise<BackendOutcome> {
  const server = redactUrl(options.postgresAdminUrl);
  let scratch;
  try {
    scratch = await createScratchDatabase(options.postgresAdminUrl);
  } catch (error) {
    const skipped = `could not create a scratch database through ${server}: ${message(error)}`;
    log(`postgres: SKIPPED: ${skipped}`);
    return { skipped };
  }
  log(`postgres: scratch database ${scratch.name} on ${server}`);
  try {
    return await benchBackend({ label: 'postgres', databaseUrl: scratch.url, options, keys, log });
  } finally {
    await scratch.drop().then(
      () => log(`postgres: dropped ${scratch.name}`),
      (error: unknown) => log(`postgres: could not drop ${scratch.name}: ${message(error)}`),
    );
  }
}

async function benchOne(
  backend: Backend,
  options: BenchOptions,
  keys: MqttBenchKeys,
): Promise<BackendOutcome> {
  try {
    return backend === 'postgres'
      ? await benchPostgres(options, keys)
      : await benchBackend({ label: 'pglite', options, keys, log });
  } catch (error) {
    log(`${backend}: FAILED: ${message(error)}`);
    return { failed: message(error) };
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const options = parseBenchOptions(process.argv.slice(2), {
    databaseUrl: process.env.DATABASE_URL,
  });
  const keyCount = options.mqttWarmupDevices + options.mqttDevices;
  log(`generating ${keyCount} ed25519 device keys...`);
  const allKeys = await generateBenchKeys(keyCount, (n) => log(`  ${n}/${keyCount} keys`));
  const keys: MqttBenchKeys = {
    warmup: allKeys.slice(0, options.mqttWarmupDevices),
    measured: allKeys.slice(options.mqttWarmupDevices),
  };
  const backends: Record<string, BackendOutcome> = {};
  for (const backend of options.backends) {
    backends[backend] = await benchOne(backend, options, keys);
  }
  log('mqtt peers: bare aedes, and the embedded broker with an in-memory directory');
  const mqttPeers = await measurePeerConnects({
    keys,
    concurrency: options.mqttConcurrency,
  }).catch((error: unknown) => ({ failed: message(error) }));
  if (!('failed' in mqttPeers)) {
    log(
      `  bare aedes: ${mqttPeers.bareAedes.connectsPerS} connects/s; ` +
        `in-memory directory: ${mqttPeers.memoryDirectory.connectsPerS} connects/s`,
    );
  }
  const problems = listProblems(backends);
  const targets = checkTargets(backends);
  console.log(
    JSON.stringify({
      bench: 'control-plane.api-and-mqtt',
      date: new Date().toISOString(),
      machine: { cores: cpus().length, cpu: cpus()[0]?.model, node: process.version },
      settings: {
        durationS: options.durationS,
        warmupS: options.warmupS,
        connections: options.connections,
        devices: options.devices,
        mqttDevices: options.mqttDevices,
        mqttWarmupDevices: options.mqttWarmupDevices,
        mqttConcurrency: options.mqttConcurrency,
      },
      notes: [
        'HTTP load: autocannon in a forked process; the control plane runs in the bench process; PostgreSQL on the same machine (all share its cores).',
        'listing: random site (1 of 20) and hardware (1 of 4) per sequence, ~1/80 of devices match; pages 1, 2, 3 by cursor.',
        'MQTT: startEmbeddedBroker with cp.devices (database lookup + signature check per CONNECT); raw-socket clients (pre-encoded CONNECT packets) in a forked process; credentials signed before timing; no online-status write per connect (the embedded link would add one).',
        'MQTT warm-up: before each timed run, mqttWarmupDevices other devices connect to the same broker, untimed (its code compiled and warm); the timed devices are not in the key cache.',
        'mqttPeers: the same generator against bare aedes (no authentication, no guards) and against the embedded broker with an in-memory directory.',
      ],
      backends,
      mqttPeers,
      targets,
      clean: problems.length === 0,
      problems,
      totalS: Math.round((performance.now() - started) / 1000),
    }),
  );
}

await main();
