/**
 * How fast a rollout reaches a fleet, against what the broker alone can do.
 *
 *   npm run bench:rollout -- --agents 1000          (from the repository root)
 *
 * 1. Builds a trust root and a ~200 KB signed bundle (a 784-185-185-10 dense
 *    MNIST model with seeded random weights, int8 through the real factory).
 * 2. Starts a control plane (embedded PGlite and aedes) in this process,
 *    installs the root, pushes the bundle.
 * 3. Forks the fleet: `--fleet-processes` processes (default 2) that enrol
 *    N real agents between them over HTTP (startSimFleet: each its own key,
 *    MQTT session, update state and slots), then waits until the control
 *    plane has seen all N online.
 * 4. Creates a rollout to all (one wave, bake and probation 1 s) and times,
 *    at the agents, when each has the deploy, has downloaded, is on
 *    probation and has committed; then when the control plane calls the
 *    rollout completed.
 * 5. Closes the fleet and measures the bare broker (bare-broker.ts): the same
 *    block frames to N plain MQTT clients in a forked process.
 *
 * Progress goes to stderr; the last stdout line is one JSON object. Run as a
 * script with `--role fleet`, this file is a fleet process. See README.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import { PglitePreparedQuery } from 'drizzle-orm/pglite/session';
import {
  buildBundle,
  buildDenseModel,
  createOnnxRunner,
  decodeOnnx,
  encodeOnnx,
} from '@fleet/bundles';
import { mergeConfig, runControlPlane, type ControlPlane } from '@fleet/control-plane';
import { bundleBlocksTopic, bundleIdOf, decodeBlockFrame } from '@fleet/protocol';
import { createFleetBundleKit, type FleetBundleKit } from '../src/fleet/fleet-bundles.ts';
import { startSimFleet, type SimFleet } from '../src/fleet/sim-fleet.ts';
import {
  createSocketByteMeter,
  failInChild,
  forkBenchChild,
  measureBareBroker,
  readCpuTimes,
  replyToParent,
  startRssSampler,
  wallMs,
  type BareBrokerResult,
  type BenchChild,
  type SocketByteMeter,
} from './bare-broker.ts';

const log = (line: string) => process.stderr.write(`${line}\n`);
const HIDDEN_UNITS = 185; // 784-185-185-10 in int8 with its golden vectors: ~201 KB
const MODEL = { name: 'bench-dense', version: '1.0.0', release: 1 };
const POLICY = {
  waves: '100%',
  bake: '1s',
  probation: '1s',
  deviceTimeout: '10m',
  successRatio: '98%',
  maxFailure: '2%',
};
/** Where each agent is: deploy taken (downloading), then the update machine's phases, then committed. */
const PHASES = ['deployed', 'verifying', 'staged', 'activating', 'probation', 'committed'] as const;
type Phase = (typeof PHASES)[number];
type PhaseCounts = Record<Phase | 'failed', number>;
interface Spread {
  count: number;
  p50Ms: number | null;
  p90Ms: number | null;
  maxMs: number | null;
}

// ---- the fleet process ------------------------------------------------------

type ToFleet =
  | {
      type: 'enrol';
      controlPlaneUrl: string;
      operatorToken: string;
      mqttUrl: string;
      count: number;
      concurrency: number;
      idPrefix: string;
    }
  | { type: 'watch'; bundleId: string; sinceMs: number }
  | { type: 'stop' }
  | { type: 'close' };
type FromFleet =
  | { type: 'enrol-progress'; started: number; total: number }
  | { type: 'enrolled'; enrolMs: number; rssBeforeBytes: number; rssAfterBytes: number }
  | { type: 'progress'; counts: PhaseCounts }
  | {
      type: 'watched';
      /** When each agent first was at or past each phase (ms since the rollout's start; agents seen only). */
      firstMs: Record<Phase, number[]>;
      failed: number;
      downloads: Record<string, number>;
      published: Record<string, number>;
      eventLoopDelayP99Ms: number;
      peakRssBytes: number;
    }
  | { type: 'closed' };

function spread(times: Float64Array | number[]): Spread {
  const seen = Float64Array.from(times)
    .filter((t) => !Number.isNaN(t))
    .sort();
  const at = (q: number) =>
    seen.length ? Math.round(seen[Math.min(seen.length - 1, Math.floor(q * seen.length))]!) : null;
  return {
    count: seen.length,
    p50Ms: at(0.5),
    p90Ms: at(0.9),
    maxMs: seen.length ? Math.round(seen.at(-1)!) : null,
  };
}

/**
 * Counts what the agents publish, by device channel (`state`, `evt`, ...):
 * each is one signed message. Wraps each session's `publish`, which the
 * agent's reporter looks up on every call.
 */
function countPublishes(fleet: SimFleet): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of fleet.agents) {
    const session = a.agent.session();
    const publish = session.publish.bind(session);
    session.publish = (topic, payload, options) => {
      const channel = topic.slice(topic.lastIndexOf(`/${a.id}/`) + a.id.length + 2);
      counts[channel] = (counts[channel] ?? 0) + 1;
      return publish(topic, payload, options);
    };
  }
  return counts;
}

const JOB_PHASES = ['downloading', 'verifying', 'staged', 'activating', 'probation'];

/** Samples every agent's update state every 100 ms; the first time each is at or past each phase. */
function watchFleet(fleet: SimFleet, bundleId: string, sinceMs: number) {
  const n = fleet.agents.length;
  const COMMITTED = PHASES.length - 1;
  const first = PHASES.map(() => new Float64Array(n).fill(NaN));
  /** The furthest phase each agent was seen at or past (-1: not yet). */
  const reached = new Int8Array(n).fill(-1);
  const failed = new Uint8Array(n);
  const counts = (): PhaseCounts => {
    const at = PHASES.map((_, p) => reached.reduce((k, r) => k + (r >= p ? 1 : 0), 0));
    return {
      ...(Object.fromEntries(PHASES.map((p, i) => [p, at[i]])) as Record<Phase, number>),
      failed: failed.reduce((a, b) => a + b, 0),
    };
  };
  const sample = () => {
    const now = wallMs() - sinceMs;
    let finished = 0;
    for (let i = 0; i < n; i++) {
      if (reached[i] === COMMITTED) {
        finished += 1;
        continue;
      }
      const s = fleet.agents[i]!.agent.state();
      const job = s.job?.model.bundleId === bundleId ? s.job : null;
      const committed = s.committed?.ref.bundleId === bundleId;
      // At or past a phase: a phase shorter than a sample is still marked.
      const at = committed ? COMMITTED : job ? JOB_PHASES.indexOf(job.phase) : -1;
      for (let p = reached[i]! + 1; p <= at; p++) first[p]![i] = now;
      reached[i] = Math.max(reached[i]!, at);
      failed[i] = !job && !committed && s.last?.bundleId === bundleId ? 1 : 0;
      if (committed || failed[i]) finished += 1;
    }
    return finished === n;
  };
  const firstMs = () =>
    Object.fromEntries(
      PHASES.map((p, i) => [p, [...first[i]!].filter((t) => !Number.isNaN(t))]),
    ) as Record<Phase, number[]>;
  return { counts, sample, firstMs };
}

function runFleetProcess(): void {
  const reply = (message: FromFleet, exit = false) => replyToParent(message, exit);
  const rss = startRssSampler();
  let fleet: SimFleet | null = null;
  let stopWatch: (() => void) | null = null;
  process.on('message', (message: ToFleet) => {
    handle(message).catch(failInChild);
  });

  async function handle(message: ToFleet): Promise<void> {
    switch (message.type) {
      case 'enrol': {
        const rssBeforeBytes = process.memoryUsage.rss();
        const startMs = wallMs();
        let lastMs = startMs;
        fleet = await startSimFleet({
          controlPlaneUrl: message.controlPlaneUrl,
          operatorToken: message.operatorToken,
          mqttUrl: message.mqttUrl,
          count: message.count,
          concurrency: message.concurrency,
          idPrefix: message.idPrefix,
          onProgress: (started, total) => {
            if (started < total && wallMs() - lastMs < 2_000) return;
            lastMs = wallMs();
            reply({ type: 'enrol-progress', started, total });
          },
        });
        const enrolMs = wallMs() - startMs;
        reply({
          type: 'enrolled',
          enrolMs,
          rssBeforeBytes,
          rssAfterBytes: process.memoryUsage.rss(),
        });
        return;
      }
      case 'watch': {
        if (!fleet) throw new Error('watch before enrol');
        const watch = watchFleet(fleet, message.bundleId, message.sinceMs);
        const published = countPublishes(fleet);
        const delay = monitorEventLoopDelay({ resolution: 10 });
        delay.enable();
        let lastProgressMs = wallMs();
        await new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            const done = watch.sample();
            if (done || wallMs() - lastProgressMs >= 2_000) {
              lastProgressMs = wallMs();
              reply({ type: 'progress', counts: watch.counts() });
            }
            if (done) stopWatch!();
          }, 100);
          stopWatch = () => {
            clearInterval(timer);
            resolve();
          };
        });
        delay.disable();
        const downloads: Record<string, number> = {};
        for (const a of fleet.agents)
          for (const [k, v] of Object.entries(a.agent.downloader().stats()))
            downloads[k] = (downloads[k] ?? 0) + v;
        reply({
          type: 'watched',
          firstMs: watch.firstMs(),
          failed: watch.counts().failed,
          downloads,
          published,
          eventLoopDelayP99Ms: Math.round(delay.percentile(99) / 1e6),
          peakRssBytes: rss.peakBytes(),
        });
        return;
      }
      case 'stop':
        stopWatch?.();
        return;
      case 'close':
        await fleet?.close();
        reply({ type: 'closed' }, true);
        return;
    }
  }
}

// ---- the bench process --------------------------------------------------------

interface BenchOptions {
  agents: number;
  enrolConcurrency: number;
  fleetProcesses: number;
  bareConcurrency: number;
  timeoutS: number;
  countQueries: boolean;
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      agents: { type: 'string', default: '1000' },
      'enrol-concurrency': { type: 'string', default: '50' },
      'bare-concurrency': { type: 'string', default: '200' },
      'fleet-processes': { type: 'string', default: '2' },
      timeout: { type: 'string', default: '600' },
      'count-queries': { type: 'boolean', default: false },
    },
  });
  const positive = (name: string, text: string) => {
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 1)
      throw new Error(`--${name}: a positive whole number, not ${JSON.stringify(text)}`);
    return value;
  };
  return {
    agents: positive('agents', values.agents),
    enrolConcurrency: positive('enrol-concurrency', values['enrol-concurrency']),
    bareConcurrency: positive('bare-concurrency', values['bare-concurrency']),
    fleetProcesses: positive('fleet-processes', values['fleet-processes']),
    timeoutS: positive('timeout', values.timeout),
    countQueries: values['count-queries'],
  };
}

/** A 784-H-H-10 ReLU network with seeded random weights, as a signed int8 bundle. */
async function buildBenchBundle(kit: FleetBundleKit): Promise<Uint8Array> {
  let seed = 0x5eed;
  const random = () =>
    ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.1;
  const layer = (inputs: number, units: number, activation: 'relu' | 'linear') => ({
    units,
    activation,
    weights: Float32Array.from({ length: inputs * units }, random),
    bias: new Float32Array(units),
  });
  const model = buildDenseModel({
    inputSize: 784,
    softmaxOutput: true,
    layers: [
      layer(784, HIDDEN_UNITS, 'relu'),
      layer(HIDDEN_UNITS, HIDDEN_UNITS, 'relu'),
      layer(HIDDEN_UNITS, 10, 'linear'),
    ],
  });
  const now = Date.now();
  const { bundle } = await buildBundle(
    {
      floatModel: encodeOnnx(model),
      evalData: {
        sampleCount: 256,
        featureCount: 784,
        classCount: 10,
        features: kit.test.features.subarray(0, 256 * 784),
        labels: kit.test.labels!.subarray(0, 256),
      },
      signers: kit.signers,
      maxAccuracyDropPoints: 100, // random weights: accuracy is not the point
      manifest: {
        ...MODEL,
        hardware: ['sim-cpu'],
        minAgentVersion: '0.1.0',
        issuedAt: new Date(now - 60_000).toISOString(),
        expires: new Date(now + 86_400_000).toISOString(),
        lineage: { producer: { kind: 'manual' } },
      },
    },
    { decode: decodeOnnx, encode: encodeOnnx, createRunner: createOnnxRunner },
  );
  return bundle;
}

function createApi(cp: ControlPlane, token: string) {
  return async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const binary = body instanceof Uint8Array;
    const response = await fetch(`${cp.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined
          ? {}
          : { 'content-type': binary ? 'application/octet-stream' : 'application/json' }),
      },
      ...(body === undefined ? {} : { body: binary ? Buffer.from(body) : JSON.stringify(body) }),
    });
    const json = (await response.json()) as T & { error?: { code: string; message: string } };
    if (!response.ok)
      throw new Error(
        `${method} ${path}: ${response.status} ${json.error?.code} ${json.error?.message}`,
      );
    return json;
  };
}

interface RolloutSummary {
  id: string;
  status: string;
  reason: string | null;
  counts: Record<string, number>;
}

async function onlineDevices(cp: ControlPlane): Promise<number> {
  const result: unknown = await cp.database.db.execute(
    sql`select count(*)::int as n from devices where online and revoked_at is null`,
  );
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as {
    n: number;
  }[];
  return Number(rows[0]?.n ?? 0);
}

async function until(
  check: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 250,
): Promise<boolean> {
  const deadline = wallMs() + timeoutMs;
  while (wallMs() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return false;
}

function describeCode(): { commit: string; uncommittedProductFiles: number } {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8' }).trim();
    const dirty = git(
      'status',
      '--porcelain',
      '--',
      'protocol',
      'firmware-bundles',
      'control-plane',
      'edge-agent',
      'simulator/src',
    );
    return {
      commit: git('rev-parse', '--short', 'HEAD'),
      uncommittedProductFiles: dirty ? dirty.split('\n').length : 0,
    };
  } catch {
    return { commit: 'unknown', uncommittedProductFiles: -1 };
  }
}

async function openFilesLimit(): Promise<number | null> {
  const limits = await readFile('/proc/self/limits', 'utf8').catch(() => '');
  const match = /Max open files\s+(\d+)/.exec(limits);
  return match ? Number(match[1]) : null;
}

const round = (x: number, digits = 2) => Number(x.toFixed(digits));

/**
 * Who used the CPU over a window: this process (control plane), the fleet
 * (its processes together, and each), everything else.
 */
function cpuShares(
  before: ReturnType<typeof readCpuTimes>,
  after: ReturnType<typeof readCpuTimes>,
) {
  if (!before || !after) return { unavailable: 'no /proc' };
  const [bench, ...fleet] = after.processMs.map((ms, i) => Math.round(ms - before.processMs[i]!));
  const fleetMs = fleet.reduce((a, b) => a + b, 0);
  const machine = Math.round(after.machineBusyMs - before.machineBusyMs);
  return {
    controlPlaneProcessMs: bench!,
    fleetProcessMs: fleetMs,
    fleetProcessesMs: fleet,
    otherProcessesMs: machine - bench! - fleetMs,
    machineBusyMs: machine,
  };
}
const mb = (bytes: number) => round(bytes / 2 ** 20, 1);

/**
 * `--count-queries`: counts the control plane's SQL statements and the rows
 * they return during the rollout (from its request to the end), by statement (drizzle's PGlite driver is wrapped; wall times
 * would include PGlite's queue, so none are given).
 */
function countQueries(): {
  top: () => { sql: string; calls: number; rows: number }[];
  reset: () => void;
} {
  const counts = new Map<string, { calls: number; rows: number }>();
  const proto = PglitePreparedQuery.prototype as unknown as {
    queryWithCache: (
      this: unknown,
      sql: string,
      params: unknown,
      run: () => Promise<unknown>,
    ) => Promise<unknown>;
  };
  const original = proto.queryWithCache;
  proto.queryWithCache = function (this: unknown, text, params, run) {
    const key = text.replace(/\s+/g, ' ').slice(0, 100);
    return original.call(this, text, params, async () => {
      const result = (await run()) as { rows?: unknown[] } | undefined;
      const entry = counts.get(key) ?? { calls: 0, rows: 0 };
      entry.calls += 1;
      entry.rows += result?.rows?.length ?? 0;
      counts.set(key, entry);
      return result;
    });
  };
  return {
    top: () =>
      [...counts]
        .map(([sql, c]) => ({ sql, ...c }))
        .sort((a, b) => b.rows + b.calls - (a.rows + a.calls))
        .slice(0, 12),
    reset: () => counts.clear(),
  };
}

type FleetProcess = BenchChild<ToFleet, FromFleet>;

/**
 * The fleet: N agents split evenly over P forked processes, driven as one.
 * One Node process runs its agents on one thread; on a 2-core machine a
 * single fleet process was CPU-bound on that thread while the machine still
 * had idle time, and its heap (8.7 GB at 10,000 agents) made every garbage
 * collection longer.
 */
interface FleetShards {
  readonly pids: number[];
  readonly sizes: number[];
  /** Sends each process its message (`message(shard)`). */
  send(message: (shard: number) => ToFleet): void;
  /** The next message of `type` from every process, in shard order. */
  all<T extends FromFleet['type']>(
    type: T,
    timeoutMs?: number,
  ): Promise<Extract<FromFleet, { type: T }>[]>;
  stop(): Promise<void>;
}

function forkFleet(
  agents: number,
  processes: number,
  onOther: (shard: number, message: FromFleet) => void,
): FleetShards {
  const count = Math.min(processes, agents);
  const sizes = Array.from(
    { length: count },
    (_, i) => Math.floor(agents / count) + (i < agents % count ? 1 : 0),
  );
  const children: FleetProcess[] = sizes.map((_, shard) =>
    forkBenchChild<ToFleet, FromFleet>(fileURLToPath(import.meta.url), 'fleet', (m) =>
      onOther(shard, m),
    ),
  );
  return {
    pids: children.map((c) => c.pid),
    sizes,
    send: (message) => children.forEach((c, shard) => c.send(message(shard))),
    all: (type, timeoutMs) => Promise.all(children.map((c) => c.next(type, timeoutMs))),
    stop: async () => void (await Promise.all(children.map((c) => c.stop()))),
  };
}

/** The fleet processes' `watched` reports as one. */
function mergeWatched(reports: Extract<FromFleet, { type: 'watched' }>[]) {
  const sum = (records: Record<string, number>[]) => {
    const total: Record<string, number> = {};
    for (const record of records)
      for (const [k, v] of Object.entries(record)) total[k] = (total[k] ?? 0) + v;
    return total;
  };
  return {
    phases: Object.fromEntries(
      PHASES.map((p) => [p, spread(reports.flatMap((r) => r.firstMs[p]))]),
    ) as Record<Phase, Spread>,
    failed: reports.reduce((a, r) => a + r.failed, 0),
    downloads: sum(reports.map((r) => r.downloads)),
    published: sum(reports.map((r) => r.published)),
    eventLoopDelayP99Ms: Math.max(...reports.map((r) => r.eventLoopDelayP99Ms)),
    /** The sum of each process's own peak (an upper bound on the fleet's peak at one time). */
    peakRssBytes: reports.reduce((a, r) => a + r.peakRssBytes, 0),
  };
}

/** The control plane with the trust root and the bundle installed; block frames are recorded. */
interface Stage {
  bundle: Uint8Array;
  bundleId: string;
  cp: ControlPlane;
  dir: string;
  brokerPort: number;
  call: ReturnType<typeof createApi>;
  /** Every block frame the control plane published on the bundle's topic (broadcasts), in order. */
  frames: Uint8Array[];
  /** When the control plane began publishing each of `frames` (wall ms). */
  frameTimesMs: number[];
}

async function setUp(): Promise<Stage> {
  log('building the trust root and a ~200 KB bundle...');
  const kit = await createFleetBundleKit();
  const bundle = await buildBenchBundle(kit);
  const bundleId = await bundleIdOf(bundle);
  log(`  bundle ${bundle.length} bytes`);
  const dir = await mkdtemp(join(tmpdir(), 'fleet-rollout-bench-'));
  // Silent: pino writes to stdout, which is the JSON's.
  const config = mergeConfig({ httpPort: 0, mqttPort: 0, dataDir: dir, logLevel: 'silent' });
  const cp = await runControlPlane({ config, announce: () => undefined });
  const call = createApi(cp, cp.firstAdminToken!);
  await call('PUT', '/v1/trust/root', kit.rootBytes);
  await call('POST', '/v1/models', bundle);
  const frames: Uint8Array[] = [];
  const frameTimesMs: number[] = [];
  // Recorded as the control plane publishes them (its distribution calls the
  // broker link's `publish` on each send). An in-process subscription would
  // see them only when the control plane's queue of device messages reaches
  // them: tens of seconds late at 10,000 agents.
  const link = cp.broker!;
  const publish = link.publish.bind(link);
  const blocksTopic = bundleBlocksTopic(bundleId);
  link.publish = (topic, payload, publishOptions) => {
    if (topic === blocksTopic) {
      frames.push(payload.slice());
      frameTimesMs.push(wallMs());
    }
    return publish(topic, payload, publishOptions);
  };
  const brokerPort = Number(new URL(cp.broker!.deviceUrl).port);
  return { bundle, bundleId, cp, dir, brokerPort, call, frames, frameTimesMs };
}

async function enrolFleet(stage: Stage, fleet: FleetShards, options: BenchOptions) {
  const { cp } = stage;
  const processes = fleet.sizes.length;
  log(
    `enrolling ${options.agents} agents (${options.enrolConcurrency} at a time) in ${processes} fleet process${processes > 1 ? 'es' : ''}...`,
  );
  fleet.send((shard) => ({
    type: 'enrol',
    controlPlaneUrl: cp.url!,
    operatorToken: cp.firstAdminToken!,
    mqttUrl: cp.broker!.deviceUrl,
    count: fleet.sizes[shard]!,
    // The control plane sees --enrol-concurrency enrolments at once in all.
    concurrency: Math.max(1, Math.ceil(options.enrolConcurrency / processes)),
    idPrefix: processes > 1 ? `bench${shard}` : 'bench',
  }));
  const reports = await fleet.all('enrolled');
  const enrolled = {
    enrolMs: Math.max(...reports.map((r) => r.enrolMs)),
    rssBeforeBytes: reports.reduce((a, r) => a + r.rssBeforeBytes, 0),
  };
  log(`  ${options.agents} agents started in ${(enrolled.enrolMs / 1000).toFixed(1)} s`);
  // Their online states may still be queued at the control plane: wait, so the rollout starts quiet.
  const settleStartMs = wallMs();
  const allOnline = await until(async () => (await onlineDevices(cp)) >= options.agents, 120_000);
  const settleMs = wallMs() - settleStartMs;
  log(`  the control plane saw them all online ${(settleMs / 1000).toFixed(1)} s later`);
  return {
    figures: {
      agentsStartedMs: Math.round(enrolled.enrolMs),
      agentsPerS: round(options.agents / (enrolled.enrolMs / 1000), 1),
      allOnlineAtControlPlaneAfterMs: allOnline ? Math.round(settleMs) : null,
    },
    rssBeforeBytes: enrolled.rssBeforeBytes,
  };
}

/** Creates the rollout and follows it until every agent has committed (or --timeout), then until the control plane says it is done. */
async function runRollout(
  stage: Stage,
  fleet: FleetShards,
  options: BenchOptions,
  meter: SocketByteMeter,
  problems: string[],
  progress: () => { text: string; counts: PhaseCounts | null },
) {
  const { call, cp } = stage;
  const brokerBytesBefore = meter.bytesWrittenOnPort(stage.brokerPort);
  const cpuBefore = readCpuTimes([process.pid, ...fleet.pids]);
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const sinceMs = wallMs();
  const seconds = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)} s`);
  fleet.send(() => ({ type: 'watch', bundleId: stage.bundleId, sinceMs }));
  const watched = fleet.all('watched', options.timeoutS * 1000 + 60_000).then(mergeWatched);
  log(`rollout of ${stage.bundle.length} bytes to ${options.agents} agents...`);
  const progressTimer = setInterval(() => {
    const rss = mb(process.memoryUsage.rss());
    log(`  ${seconds(wallMs() - sinceMs)}: ${progress().text}; control plane rss ${rss} MB`);
  }, 2_000);
  const stopTimer = setTimeout(() => {
    problems.push(`not every agent committed within --timeout ${options.timeoutS} s`);
    fleet.send(() => ({ type: 'stop' }));
  }, options.timeoutS * 1000);
  try {
    const created = await call<RolloutSummary>('POST', '/v1/rollouts', {
      model: `${MODEL.name}@${MODEL.version}`,
      target: 'all',
      ...POLICY,
    });
    const createMs = wallMs() - sinceMs;
    log(`  created ${created.id}: the request took ${seconds(createMs)} (it sends the deploys)`);
    const atAgents = await watched.catch((error: unknown) => {
      problems.push(
        `${String(error)}: a fleet process was too busy to answer; the last progress reports are given`,
      );
      return null;
    });
    clearTimeout(stopTimer);
    const committed = atAgents?.phases.committed;
    const allCommittedMs = committed?.count === options.agents ? committed.maxMs : null;
    const finished = await until(async () => {
      const { rollouts } = await call<{ rollouts: RolloutSummary[] }>(
        'GET',
        '/v1/rollouts?limit=1',
      );
      return rollouts[0]?.status === 'completed' || rollouts[0]?.status === 'aborted';
    }, 60_000);
    const completedMs = finished ? Math.round(wallMs() - sinceMs) : null;
    const wallWindowMs = Math.round(wallMs() - sinceMs);
    const cpuAfter = readCpuTimes([process.pid, ...fleet.pids]);
    const brokerSentBytes = meter.bytesWrittenOnPort(stage.brokerPort) - brokerBytesBefore;
    delay.disable();
    const shown = await call<RolloutSummary & { devices: { error: { code: string } | null }[] }>(
      'GET',
      `/v1/rollouts/${created.id}`,
    );
    const failures: Record<string, number> = {};
    for (const d of shown.devices)
      if (d.error) failures[d.error.code] = (failures[d.error.code] ?? 0) + 1;
    if (shown.status !== 'completed')
      problems.push(
        `rollout ${shown.status} when the bench stopped following it${shown.reason ? `: ${shown.reason}` : ''}`,
      );
    const failed = atAgents?.failed ?? progress().counts?.failed ?? 0;
    if (failed > 0) problems.push(`${failed} agents ended the update without committing`);
    log(
      `  all committed at the agents: ${seconds(allCommittedMs)}; ${shown.status} at the control plane: ${seconds(completedMs)}`,
    );
    const fleetBytes = options.agents * stage.bundle.length;
    const published = atAgents?.published ?? {};
    const publishedCount = Object.values(published).reduce((a, b) => a + b, 0);
    return {
      allCommittedMs,
      peakRssBytes: atAgents?.peakRssBytes ?? null,
      figures: {
        rollout: {
          id: created.id,
          status: shown.status,
          createRequestMs: Math.round(createMs),
          allCommittedMs,
          devicesPerS: allCommittedMs ? round(options.agents / (allCommittedMs / 1000), 1) : null,
          completedAtControlPlaneMs: completedMs,
          atAgents: atAgents
            ? { ...atAgents.phases, failed }
            : { lastProgressReport: progress().counts },
          controlPlaneCounts: shown.counts,
          failures,
          cpu: {
            wallMs: wallWindowMs,
            ...cpuShares(cpuBefore, cpuAfter),
            controlPlaneEventLoopDelayP99Ms: Math.round(delay.percentile(99) / 1e6),
            fleetEventLoopDelayP99Ms: atAgents?.eventLoopDelayP99Ms ?? null,
          },
        },
        bytes: {
          bundleBytes: stage.bundle.length,
          agentsTimesBundleBytes: fleetBytes,
          brokerSentBytes,
          brokerSentToAgentsTimesBundle: round(brokerSentBytes / fleetBytes, 3),
          controlPlanePublished: cp.distribution.stats(),
          // The broadcast, then repairs: when the first and the last block frame went out.
          blockFramesMs: {
            first: stage.frameTimesMs[0] ? Math.round(stage.frameTimesMs[0] - sinceMs) : null,
            last: stage.frameTimesMs.length
              ? Math.round(stage.frameTimesMs.at(-1)! - sinceMs)
              : null,
          },
          agentDownloads: atAgents?.downloads ?? null,
        },
        agentMessagesPublished: {
          ...published,
          perAgent: atAgents ? round(publishedCount / options.agents, 1) : null,
        },
      },
    };
  } finally {
    clearInterval(progressTimer);
    clearTimeout(stopTimer);
  }
}

/** The broadcast: the first frame of each block, in the order published. */
function broadcastFrames(frames: Uint8Array[]): Uint8Array[] {
  const byIndex = new Map<number, Uint8Array>();
  for (const frame of frames) {
    const index = decodeBlockFrame(frame).index;
    if (!byIndex.has(index)) byIndex.set(index, frame);
  }
  return [...byIndex.values()];
}

function checkTargets(agents: number, allCommittedMs: number | null, bareMs: number | null) {
  const toBare = allCommittedMs !== null && bareMs ? round(allCommittedMs / bareMs, 2) : null;
  const under60s = allCommittedMs !== null && allCommittedMs < 60_000;
  const within3x = toBare !== null && toBare <= 3;
  return {
    rolloutToBare: toBare,
    targets: {
      fleet10k: {
        target: '10,000 agents all committed in under 60 s, within 3x the bare-broker time',
        met: agents >= 10_000 && under60s && within3x,
      },
      under60s: { met: under60s, allCommittedMs },
      within3xBare: { met: within3x, rolloutToBare: toBare },
      ci1000: {
        target: 'at least 1,000 agents all committed',
        met: agents >= 1_000 && allCommittedMs !== null,
      },
    },
  };
}

async function runBench(options: BenchOptions): Promise<void> {
  const startedMs = wallMs();
  const problems: string[] = [];
  const fail = (what: string) => (error: unknown) => {
    problems.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    log(`${what} FAILED: ${String(error)}`);
  };
  const meter = createSocketByteMeter();
  const benchRss = startRssSampler();
  const queries = options.countQueries ? countQueries() : null;
  const code = describeCode();
  const loadAtStart = loadavg()[0]!;
  log(`rollout bench: ${options.agents} agents, commit ${code.commit}`);

  const stage = await setUp();
  // Each fleet process's latest enrolment and phase counts; shown summed.
  const enrolledBy: number[] = [];
  const countsBy: (PhaseCounts | null)[] = [];
  const lastProgress = (): { text: string; counts: PhaseCounts | null } => {
    if (countsBy.length === 0 || countsBy.some((c) => c === null))
      return { text: 'waiting for the fleet', counts: null };
    const counts = Object.fromEntries(
      [...PHASES, 'failed' as const].map((k) => [k, countsBy.reduce((a, c) => a + c![k], 0)]),
    ) as PhaseCounts;
    return {
      text: PHASES.map((p) => `${p} ${counts[p]}`).join(', ') + `, failed ${counts.failed}`,
      counts,
    };
  };
  const fleet = forkFleet(options.agents, options.fleetProcesses, (shard, m) => {
    if (m.type === 'enrol-progress') {
      enrolledBy[shard] = m.started;
      log(`  enrolled ${enrolledBy.reduce((a, b) => a + (b ?? 0), 0)}/${options.agents}`);
    }
    if (m.type === 'progress') countsBy[shard] = m.counts;
  });
  for (let shard = 0; shard < fleet.sizes.length; shard++) countsBy[shard] = null;
  let enrolment: Awaited<ReturnType<typeof enrolFleet>> | null = null;
  let rollout: Awaited<ReturnType<typeof runRollout>> | null = null;
  try {
    enrolment = await enrolFleet(stage, fleet, options);
    queries?.reset(); // the rollout's statements only
    rollout = await runRollout(stage, fleet, options, meter, problems, lastProgress);
  } catch (error) {
    fail('the rollout run')(error);
  } finally {
    fleet.send(() => ({ type: 'close' }));
    await fleet.all('closed', 120_000).catch(fail('closing the fleet'));
    await fleet.stop();
    await stage.cp.close();
    await rm(stage.dir, { recursive: true, force: true });
  }

  // The limit: the same broadcast frames, through a bare broker, to N plain clients.
  const frames = broadcastFrames(stage.frames);
  let bare: BareBrokerResult | null = null;
  if (frames.length === 0) problems.push('no block frames were seen: no bare-broker comparison');
  else {
    log(`bare broker: ${frames.length} frames to ${options.agents} plain MQTT clients...`);
    bare = await measureBareBroker({
      clients: options.agents,
      frames,
      concurrency: options.bareConcurrency,
      meter,
      log,
    }).catch((error: unknown) => (fail('bare broker')(error), null));
    if (bare)
      log(
        `  delivered in ${(bare.deliverMs / 1000).toFixed(2)} s (connecting first took ${(bare.connectMs / 1000).toFixed(1)} s)`,
      );
  }

  const rssBefore = enrolment?.rssBeforeBytes ?? 0;
  const peakRss = rollout?.peakRssBytes ?? null;
  console.log(
    JSON.stringify({
      bench: 'simulator.rollout',
      date: new Date().toISOString(),
      code,
      machine: {
        cores: cpus().length,
        cpu: cpus()[0]?.model,
        node: process.version,
        memoryMB: mb(totalmem()),
        openFilesLimit: await openFilesLimit(),
        // Other work on the machine (other test suites) shows here and in rollout.cpu.
        loadAverage1m: { atStart: round(loadAtStart), atEnd: round(loadavg()[0]!) },
      },
      settings: {
        agents: options.agents,
        enrolConcurrency: options.enrolConcurrency,
        policy: POLICY,
        controlPlane: { backend: 'pglite + embedded aedes', rollouts: mergeConfig({}).rollouts },
        agent:
          'defaults: tick 1 s, health every 60 s, first repair request after 2 s quiet (10 s while no block has come)',
        agentSigning: 'node:crypto Ed25519 (nativeSigner from @fleet/protocol/node)',
        fleetProcesses: fleet.sizes.length,
        processes: `control plane and broker: the bench process; the N agents: ${fleet.sizes.length} forked process${fleet.sizes.length > 1 ? `es of ${fleet.sizes.join(', ')}` : ''}; bare broker: the bench process, its N clients: one forked process`,
      },
      enrolment: enrolment?.figures ?? null,
      ...(rollout?.figures ?? { rollout: null }),
      memory: {
        fleetProcessBeforeEnrolMB: mb(rssBefore),
        fleetProcessPeakMB: peakRss === null ? null : mb(peakRss),
        peakRssPerAgentKB: peakRss ? round((peakRss - rssBefore) / options.agents / 1024, 1) : null,
        controlPlaneProcessPeakMB: mb(benchRss.peakBytes()),
      },
      bareBroker: bare,
      ...checkTargets(options.agents, rollout?.allCommittedMs ?? null, bare?.deliverMs ?? null),
      ...(queries ? { controlPlaneQueries: queries.top() } : {}),
      clean: problems.length === 0,
      problems,
      totalS: Math.round((wallMs() - startedMs) / 1000),
    }),
  );
}

const roleAt = process.argv.indexOf('--role');
const role = roleAt > 0 ? process.argv[roleAt + 1] : undefined;
if (role === 'fleet') runFleetProcess();
else if (role === undefined) await runBench(parseOptions(process.argv.slice(2)));
