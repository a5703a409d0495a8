/**
 * The rollout bench's yardstick, and the measuring tools both its halves use.
 *
 * `measureBareBroker` is the limit a rollout is compared with: a plain aedes
 * broker (no device ACLs, no guards, no control plane) on a free port in this
 * process, and N plain mqtt.js clients (MQTT 3.1.1, one QoS 0 subscription to
 * one topic) in a forked process, as the rollout bench's agents are. This
 * process publishes the given frames on that topic, in order, as the control
 * plane publishes a bundle's blocks, and the time is from the first publish
 * until every client has received every payload byte.
 *
 * Run as a script with `--role bare-clients`, this file is that client process.
 *
 * The tools: `createSocketByteMeter` counts the bytes servers in this process
 * wrote to their accepted sockets (Node's `net.server.socket` diagnostics
 * channel), per listening port; `startRssSampler` keeps a process's peak RSS;
 * `forkBenchChild` runs one of the bench's child roles with a message channel.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { subscribe as subscribeChannel } from 'node:diagnostics_channel';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';

export type Log = (line: string) => void;

/** Wall-clock milliseconds with sub-ms precision, comparable between processes on one machine. */
export const wallMs = (): number => performance.timeOrigin + performance.now();

export interface SocketByteMeter {
  /** Bytes written so far to every socket accepted on `port` (open or closed). */
  bytesWrittenOnPort(port: number): number;
}

/** Call before the servers to be measured accept their first connection. */
export function createSocketByteMeter(): SocketByteMeter {
  const byPort = new Map<number, Set<Socket>>();
  subscribeChannel('net.server.socket', (message) => {
    const { socket } = message as { socket: Socket };
    const port = socket.localPort;
    if (port === undefined) return;
    const sockets = byPort.get(port) ?? new Set<Socket>();
    sockets.add(socket);
    byPort.set(port, sockets);
  });
  return {
    bytesWrittenOnPort(port) {
      let total = 0;
      for (const socket of byPort.get(port) ?? []) total += socket.bytesWritten;
      return total;
    },
  };
}

export interface RssSampler {
  peakBytes(): number;
  stop(): void;
}

/** Samples this process's RSS every `intervalMs` and keeps the highest seen. */
export function startRssSampler(intervalMs = 200): RssSampler {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, intervalMs);
  timer.unref();
  return {
    peakBytes: () => Math.max(peak, process.memoryUsage.rss()),
    stop: () => clearInterval(timer),
  };
}

/** Linux clock ticks per second (USER_HZ) in /proc/stat and /proc/PID/stat. */
const TICKS_PER_S = 100;

/**
 * CPU time so far, in ms, from /proc (null where there is none): all cores'
 * busy time (everything but idle and iowait), and each of `pids`'
 * user + system time. Deltas over a window say how busy the machine was and
 * how much of it was the bench's own processes.
 */
export function readCpuTimes(
  pids: number[],
): { machineBusyMs: number; processMs: number[] } | null {
  try {
    const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
    const ticks = fields.map(Number);
    const busy = ticks.reduce((a, b) => a + b, 0) - ticks[3]! - ticks[4]!;
    const processMs = pids.map((pid) => {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const after = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 on
      return ((Number(after[11]) + Number(after[12])) * 1000) / TICKS_PER_S; // utime, stime
    });
    return { machineBusyMs: (busy * 1000) / TICKS_PER_S, processMs };
  } catch {
    return null;
  }
}

export interface BenchChild<In, Out extends { type: string }> {
  readonly pid: number;
  send(message: In): void;
  /** The next message of `type` (earlier ones of other types go to `onOther`). */
  next<T extends Out['type']>(type: T, timeoutMs?: number): Promise<Extract<Out, { type: T }>>;
  /** Waits up to `graceMs` for the child to exit (after it was told to finish), then kills it. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Forks `modulePath` (TypeScript, through tsx) with `--role <role>` and this
 * process's node flags (so `node --cpu-prof` profiles every process); its stdout
 * and stderr go to this process's stderr, so stdout stays for the JSON. A
 * message `{ type: 'error', message }` or an early exit rejects what is awaited.
 */
export function forkBenchChild<In, Out extends { type: string }>(
  modulePath: string,
  role: string,
  onOther: (message: Out) => void,
  maxOldSpaceMb = 8_192,
): BenchChild<In, Out> {
  const child: ChildProcess = fork(modulePath, ['--role', role], {
    // The bench's own node flags (tsx, and --cpu-prof when profiling) go to its children too.
    execArgv: [
      ...process.execArgv,
      ...(process.execArgv.some((a) => a.includes('tsx')) ? [] : ['--import', 'tsx']),
      `--max-old-space-size=${maxOldSpaceMb}`,
    ],
    stdio: ['ignore', 2, 2, 'ipc'],
  });
  const waiting = new Map<string, { resolve: (m: Out) => void; reject: (e: Error) => void }>();
  const failAll = (error: Error) => {
    for (const w of waiting.values()) w.reject(error);
    waiting.clear();
  };
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      failAll(new Error(`the ${role} process exited (${signal ?? code})`));
      resolve();
    }),
  );
  child.on('message', (message: Out | { type: 'error'; message: string }) => {
    if (message.type === 'error') {
      failAll(new Error(`${role}: ${(message as { message: string }).message}`));
      return;
    }
    const w = waiting.get(message.type);
    if (!w) return onOther(message as Out);
    waiting.delete(message.type);
    w.resolve(message as Out);
  });
  return {
    pid: child.pid!,
    send: (message) => child.send(message as object),
    next(type, timeoutMs = 30 * 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(type);
          reject(new Error(`${role}: no '${type}' within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(type, {
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m as Extract<Out, { type: typeof type }>);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
      });
    },
    async stop(graceMs = 10_000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** A child role's message to the bench process; with `exit`, the child exits once it is sent. */
export function replyToParent<T extends { type: string }>(message: T, exit = false): void {
  process.send?.(message, () => {
    if (exit) process.exit(0); // also writes the --cpu-prof profile
  });
}

/** Tells the bench process what failed in a child role, then exits 1. */
export function failInChild(error: unknown): void {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.send?.({ type: 'error', message }, () => process.exit(1));
  setTimeout(() => process.exit(1), 1_000);
}

export interface BareBrokerResult {
  clients: number;
  frames: number;
  payloadBytesPerClient: number;
  /** Connecting and subscribing every client (not in `deliverMs`). */
  connectMs: number;
  /** From the first publish until every client has received every payload byte. */
  deliverMs: number;
  /** Bytes the broker wrote to the clients' sockets while delivering. */
  brokerSentBytes: number;
  clientProcessPeakRssBytes: number;
}

interface ConnectJob {
  type: 'connect';
  url: string;
  topic: string;
  count: number;
  concurrency: number;
  expectBytes: number;
}
type ToClients = ConnectJob | { type: 'finish' };
type FromClients =
  | { type: 'connected'; connectMs: number; failed: number }
  | { type: 'connect-progress'; connected: number; total: number }
  | { type: 'delivered'; atMs: number }
  | { type: 'receive-progress'; complete: number; total: number }
  | { type: 'finished'; peakRssBytes: number };

const TOPIC = 'bench/bare/blocks';

/** Delivers `frames` through a bare aedes broker to `clients` plain MQTT clients; see the header. */
export async function measureBareBroker(options: {
  clients: number;
  frames: Uint8Array[];
  concurrency: number;
  meter: SocketByteMeter;
  log: Log;
}): Promise<BareBrokerResult> {
  const { log } = options;
  const broker = await Aedes.createBroker();
  const server = createServer((socket) => broker.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const expectBytes = options.frames.reduce((n, f) => n + f.length, 0);
  const child = forkBenchChild<ToClients, FromClients>(
    fileURLToPath(import.meta.url),
    'bare-clients',
    (m) => {
      if (m.type === 'connect-progress') log(`  bare: ${m.connected}/${m.total} clients connected`);
      if (m.type === 'receive-progress')
        log(`  bare: ${m.complete}/${m.total} clients have every byte`);
    },
  );
  try {
    child.send({
      type: 'connect',
      url: `mqtt://127.0.0.1:${port}`,
      topic: TOPIC,
      count: options.clients,
      concurrency: options.concurrency,
      expectBytes,
    });
    const connected = await child.next('connected');
    if (connected.failed > 0) throw new Error(`${connected.failed} bare clients failed to connect`);
    const delivered = child.next('delivered');
    const bytesBefore = options.meter.bytesWrittenOnPort(port);
    const startMs = wallMs();
    for (const frame of options.frames) {
      await new Promise<void>((resolve, reject) =>
        broker.publish(
          {
            cmd: 'publish',
            topic: TOPIC,
            payload: Buffer.from(frame),
            qos: 0,
            retain: false,
            dup: false,
          },
          (error) => (error ? reject(error) : resolve()),
        ),
      );
    }
    const { atMs } = await delivered;
    const brokerSentBytes = options.meter.bytesWrittenOnPort(port) - bytesBefore;
    child.send({ type: 'finish' });
    const finished = await child.next('finished');
    return {
      clients: options.clients,
      frames: options.frames.length,
      payloadBytesPerClient: expectBytes,
      connectMs: Math.round(connected.connectMs),
      deliverMs: Math.round(atMs - startMs),
      brokerSentBytes,
      clientProcessPeakRssBytes: finished.peakRssBytes,
    };
  } finally {
    await child.stop();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The client process: connects `count` plain clients, reports when each has `expectBytes`. */
function runBareClients(): void {
  const reply = (message: FromClients, exit = false) => replyToParent(message, exit);
  const rss = startRssSampler();
  const clients: MqttClient[] = [];
  process.on('message', (message: ToClients) => {
    if (message.type === 'finish') {
      for (const c of clients) c.end(true);
      reply({ type: 'finished', peakRssBytes: rss.peakBytes() }, true);
      return;
    }
    connectAll(message).catch(failInChild);
  });

  async function connectAll(job: ConnectJob): Promise<void> {
    const startMs = wallMs();
    let complete = 0;
    let failed = 0;
    let next = 0;
    let lastLogMs = startMs;
    const onComplete = () => {
      complete += 1;
      if (complete === job.count) reply({ type: 'delivered', atMs: wallMs() });
      else if (wallMs() - lastLogMs > 2_000) {
        lastLogMs = wallMs();
        reply({ type: 'receive-progress', complete, total: job.count });
      }
    };
    const connectOne = async (index: number) => {
      const client = await mqtt.connectAsync(job.url, {
        clientId: `bare-${index}`,
        protocolVersion: 4,
        clean: true,
        reconnectPeriod: 0,
        connectTimeout: 60_000,
      });
      let received = 0;
      client.on('message', (_topic, payload) => {
        received += payload.length;
        if (received === job.expectBytes) onComplete();
      });
      await client.subscribeAsync(job.topic, { qos: 0 });
      clients.push(client);
    };
    const worker = async () => {
      while (next < job.count) {
        const index = next++;
        await connectOne(index).catch(() => (failed += 1));
        if (wallMs() - lastLogMs > 2_000) {
          lastLogMs = wallMs();
          reply({ type: 'connect-progress', connected: clients.length, total: job.count });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(job.concurrency, job.count) }, worker));
    reply({ type: 'connected', connectMs: wallMs() - startMs, failed });
  }
}

const roleAt = process.argv.indexOf('--role');
if (roleAt > 0 && process.argv[roleAt + 1] === 'bare-clients') runBareClients();
