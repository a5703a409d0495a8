/**
 * The MQTT load generator: a separate process (forked by mqtt-connects.ts)
 * holding the bench devices' secret keys. It signs each device's credential
 * first (not timed: a device signs once per connect, on its own CPU), then
 * opens one mqtt.js connection per device, `concurrency` CONNECTs in flight,
 * counts CONNACKs over wall time, and disconnects them all.
 */
import mqtt, { type MqttClient } from 'mqtt';
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

function connectOne(port: number, id: string, password: Buffer): Promise<MqttClient> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
    clientId: id,
    username: id,
    password,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
  });
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      client.end(true);
      reject(error);
    };
    const onClose = () => fail(new Error('connection closed before CONNACK'));
    client.once('connect', () => {
      settled = true;
      client.off('close', onClose);
      resolve(client);
    });
    client.on('error', fail); // stays on: a later error must not crash the process
    client.once('close', onClose);
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return +sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!.toFixed(2);
}

async function runJob(job: MqttConnectJob): Promise<MqttConnectSummary> {
  const t0 = performance.now();
  const passwords = job.devices.map((d) =>
    Buffer.from(
      signMqttCredential({
        deviceId: d.id,
        clientId: d.id,
        nowMs: Date.now(),
        signer: { keyId: d.keyId, secretKey: fromBase64(d.secretKey) },
      }),
    ),
  );
  const signingMs = performance.now() - t0;
  process.stderr.write(`  [mqtt ${process.pid}] signed ${passwords.length} credentials\n`);

  const clients: MqttClient[] = [];
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < job.devices.length) {
      const i = next++;
      const started = performance.now();
      try {
        clients.push(await connectOne(job.port, job.devices[i]!.id, passwords[i]!));
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
  await Promise.all(clients.map((c) => c.endAsync().catch(() => undefined)));

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
