/**
 * The MQTT load generator: a separate process (forked by mqtt-connects.ts)
 * holding the bench devices' secret keys. It signs each device's credential
 * and encodes its CONNECT packet first (not timed: a device does that once per
 * connect, on its own CPU), then opens one raw TCP connection per device,
 * `concurrency` CONNECTs in flight, counts successful CONNACKs over wall time,
 * and disconnects them all. Raw sockets rather than mqtt.js keep the load
 * generator's own CPU small, as emqtt-bench does: on a 2-core machine it shares
 * the cores with the broker under test.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { generate } from 'mqtt-packet';
import { fromBase64, signMqttCredential } from '@fleet/protocol';

export interface MqttConnectJob {
  port: number;
  concurrency: number;
  /** Device id, base64 secret key (tweetnacl's 64 bytes) and key id. */
  devices: { id: string; secretKey: string; keyId: string }[];
}

export interface MqttConnectSummary {
  attempted: number;
  connected: number;
  notConnected: number;
  /** Failure messages and how often each was seen. */
  failures: Record<string, number>;
  wallMs: number;
  connectsPerS: number;
  connectP50Ms: number;
  connectP99Ms: number;
  signingMs: number;
}

const CONNECT_TIMEOUT_MS = 30_000;

/** CONNACK: 0x20, remaining length 2, session-present flag, return code. */
const CONNACK_BYTES = 4;
const DISCONNECT = Buffer.from([0xe0, 0x00]);

function connectOne(port: number, connectPacket: Buffer): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ port, host: '127.0.0.1' });
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error('no CONNACK within 30 s')), CONNECT_TIMEOUT_MS);
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.once('connect', () => socket.write(connectPacket));
    socket.on('error', (error) => fail(error));
    socket.once('close', () => fail(new Error('connection closed before CONNACK')));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < CONNACK_BYTES) return;
      clearTimeout(timer);
      socket.removeAllListeners('close');
      socket.removeAllListeners('data');
      const returnCode = received[3]!;
      if (received[0] !== 0x20 || returnCode !== 0) {
        socket.destroy();
        reject(new Error(`CONNACK refused (return code ${returnCode})`));
        return;
      }
      resolve(socket);
    });
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return +sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!.toFixed(2);
}

async function runJob(job: MqttConnectJob): Promise<MqttConnectSummary> {
  const t0 = performance.now();
  const packets = job.devices.map((d) =>
    generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      keepalive: 60,
      clientId: d.id,
      username: d.id,
      password: Buffer.from(
        signMqttCredential({
          deviceId: d.id,
          clientId: d.id,
          nowMs: Date.now(),
          signer: { keyId: d.keyId, secretKey: fromBase64(d.secretKey) },
        }),
      ),
    }),
  );
  const signingMs = performance.now() - t0;
  process.stderr.write(`  [mqtt ${process.pid}] signed ${packets.length} credentials\n`);

  const clients: Socket[] = [];
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < job.devices.length) {
      const i = next++;
      const started = performance.now();
      try {
        clients.push(await connectOne(job.port, packets[i]!));
        latencies.push(performance.now() - started);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        failures[message] = (failures[message] ?? 0) + 1;
      }
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  const wallMs = performance.now() - start;
  process.stderr.write(`  [mqtt ${process.pid}] ${clients.length} connected; disconnecting\n`);
  for (const socket of clients) socket.end(DISCONNECT);

  latencies.sort((a, b) => a - b);
  return {
    attempted: job.devices.length,
    connected: clients.length,
    notConnected: job.devices.length - clients.length,
    failures,
    wallMs: Math.round(wallMs),
    connectsPerS: +(clients.length / (wallMs / 1000)).toFixed(1),
    connectP50Ms: percentile(latencies, 50),
    connectP99Ms: percentile(latencies, 99),
    signingMs: Math.round(signingMs),
  };
}

process.once('message', (job: MqttConnectJob) => {
  runJob(job).then(
    (summary) => process.send!({ ok: true, summary }, () => process.exit(0)),
    (error: unknown) => process.send!({ ok: false, error: String(error) }, () => process.exit(1)),
  );
});
