/**
 * Test fixture for federated rounds: an in-memory control plane wired to a
 * fake CandidatePort (records every call), with a trust root, a base model
 * whose manifest carries a `training` field (a 784-100-10 dense net, big
 * enough that int8 rounding allowance exceeds the clip bound: THREATS 37),
 * enrolled devices reporting that they run it, and helpers that sign and
 * deliver `fl-update` headers and parts through the MQTT path
 * (`rollouts.onDeviceMessage`).
 */
import { createHash } from 'node:crypto';
import {
  bundleIdOf,
  deviceTopic,
  encodeTensorSet,
  flPartCount,
  generateKeyPair,
  keyIdOf,
  MAX_FL_PART_BYTES,
  packBundle,
  signDeviceMessage,
  signEnrolmentRequest,
  toBase64,
  utf8,
  type BundleModelRef,
  type FlUpdateMessage,
  type FlUpdatePartMessage,
  type NamedTensor,
  type Signer,
} from '@fleet/protocol';
import { manifestInput, NOW_MS, sampleParts, testTrust } from '@fleet/protocol/testing';
import { pino } from 'pino';
import { mergeConfig, type ConfigOverrides } from '../config.ts';
import { createControlPlane, type ControlPlane } from '../control-plane.ts';
import { OPERATOR_ROLES, type OperatorRole } from '../core/auth/operator-tokens.ts';
import type { CandidatePort, PromotionPolicy } from '../core/fl/candidate-port.ts';

export const ARCH = {
  kind: 'dense' as const,
  inputSize: 784,
  layers: [
    { units: 100, activation: 'relu' as const },
    { units: 10, activation: 'linear' as const },
  ],
  softmaxOutput: true,
};
export const SHAPES = [
  { name: 'dense_0/kernel', dims: [784, 100] },
  { name: 'dense_0/bias', dims: [100] },
  { name: 'dense_1/kernel', dims: [100, 10] },
  { name: 'dense_1/bias', dims: [10] },
];

/** Tensors of the architecture, each value `fill(tensorIndex, i)`. */
export function tensorsOf(fill: (t: number, i: number) => number): NamedTensor[] {
  return SHAPES.map((s, t) => {
    const values = new Float32Array(s.dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < values.length; i++) values[i] = fill(t, i);
    return { name: s.name, dims: [...s.dims], values };
  });
}

export const BASE = tensorsOf((t, i) => (((i * 7 + t) % 13) - 6) / 100);

/* eslint-disable @typescript-eslint/require-await -- fakes keep the port's async shape */
/** A fake candidate pipeline: fixed figures, every call recorded. */
export function fakeCandidates(figures = { candidateAccuracy: 0.93, championAccuracy: 0.9 }) {
  const calls: Array<{ method: string; input: unknown }> = [];
  const state = {
    figures,
    policy: { riskTier: 'low', autoPromote: true } as PromotionPolicy,
    /** Evaluations that throw before succeeding (an outage). */
    failEvaluations: 0,
  };
  const port: CandidatePort = {
    baseWeights: async (baseBundleId) => {
      calls.push({ method: 'baseWeights', input: baseBundleId });
      return { tensors: BASE.map((t) => ({ ...t, values: t.values.slice() })) };
    },
    promotionPolicy: async (input) => {
      calls.push({ method: 'promotionPolicy', input });
      return state.policy;
    },
    evaluate: async (input) => {
      calls.push({ method: 'evaluate', input });
      if (state.failEvaluations > 0) {
        state.failEvaluations--;
        throw new Error('eval service down');
      }
      return state.figures;
    },
    build: async (input) => {
      calls.push({ method: 'build', input });
      return { bundleId: 'c'.repeat(64), name: 'mnist-2nn', version: '1.3.0', release: 6 };
    },
    startRollout: async (input) => {
      calls.push({ method: 'startRollout', input });
      return { rolloutId: 'r-candidate-1' };
    },
  };
  return { port, calls, state };
}

export interface FlDevice {
  id: string;
  signer: Signer;
}

export interface FlFleet {
  cp: ControlPlane;
  clock: { nowMs: number };
  tokens: Record<OperatorRole, string>;
  fake: ReturnType<typeof fakeCandidates>;
  model: BundleModelRef;
  /** Commands published (topic, JSON). */
  published: Array<{ topic: string; qos: number; message: Record<string, unknown> }>;
  call(
    method: string,
    path: string,
    options?: { token?: string | null; json?: unknown },
  ): Promise<Response>;
  /** Enrols a device and reports it online running `model` (default: the base model). */
  device(
    id: string,
    options?: { tags?: Record<string, string>; model?: BundleModelRef; online?: boolean },
  ): Promise<FlDevice>;
  /** Signs and delivers one message as the device's telemetry, and waits for the work it set off. */
  deliver(device: FlDevice, message: FlUpdateMessage | FlUpdatePartMessage): Promise<void>;
  close(): Promise<void>;
}

export async function startFlFleet(overrides: ConfigOverrides = {}): Promise<FlFleet> {
  const clock = { nowMs: NOW_MS };
  const fake = fakeCandidates();
  const published: FlFleet['published'] = [];
  const cp = await createControlPlane({
    config: mergeConfig({ maxBundleBytes: 4 * 1024 * 1024, ...overrides }),
    nowMs: () => clock.nowMs,
    logger: pino({ level: 'silent' }),
    inMemory: true,
    flCandidates: fake.port,
    // A broker that records what is published (QoS included) and delivers nothing.
    connectBroker: async () => ({
      kind: 'embedded',
      deviceUrl: 'mqtt://127.0.0.1:0',
      publish: async (topic, payload, options) => {
        published.push({
          topic,
          qos: options?.qos ?? 0,
          message: JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>,
        });
      },
      subscribe: async () => undefined,
      disconnect: () => undefined,
      isUp: () => true,
      close: async () => undefined,
    }),
  });
  const tokens = { admin: cp.firstAdminToken! } as Record<OperatorRole, string>;
  for (const role of OPERATOR_ROLES.filter((r) => r !== 'admin')) {
    tokens[role] = (
      await cp.operators.create({ name: `${role} for tests`, role }, 'system')
    ).secret;
  }
  const call: FlFleet['call'] = (method, path, options = {}) => {
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? tokens.admin : options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    return Promise.resolve(cp.app.request(path, { method, headers, body }));
  };
  const raw = (method: string, path: string, body: Uint8Array, token: string) =>
    cp.app.request(path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(body),
    });

  const trust = await testTrust();
  await expect(raw('PUT', '/v1/trust/root', trust.rootBytes, tokens.admin), 201);
  const bundle = await packBundle({
    manifest: manifestInput({ training: { architecture: ARCH, weightsPart: 'weights.ftns' } }),
    parts: [
      ...sampleParts(),
      { name: 'weights.ftns', bytes: encodeTensorSet(BASE, { encoding: 'float32' }) },
    ],
    signers: trust.bundleKeys.slice(0, 2),
  });
  await expect(raw('POST', '/v1/models', bundle, tokens.operator), 201);
  const model = {
    name: 'mnist-2nn',
    version: '1.2.0',
    release: 5,
    bundleId: await bundleIdOf(bundle),
  };

  const device: FlFleet['device'] = async (id, options = {}) => {
    const created = (await (
      await call('POST', '/v1/enrolment-tokens', { json: {}, token: tokens.operator })
    ).json()) as { token: string };
    const pair = generateKeyPair();
    const signer = { keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey };
    const request = signEnrolmentRequest({
      token: created.token,
      deviceId: id,
      publicKey: pair.publicKey,
      hardware: 'rpi4',
      tags: options.tags ?? {},
      agentVersion: '0.1.0',
      nowMs: clock.nowMs,
      signer,
    });
    await expect(
      cp.app.request('/v1/enrol', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: request,
      }),
      201,
    );
    const state = {
      type: 'state' as const,
      id: `state-${id}-0001`,
      schemaVersion: 1 as const,
      ts: new Date(clock.nowMs).toISOString(),
      deviceId: id,
      online: options.online ?? true,
      agentVersion: '0.2.0',
      hardware: 'rpi4',
      model: options.model ?? model,
      update: { state: 'idle' as const },
    };
    await cp.devices.onStateMessage(
      id,
      utf8(JSON.stringify(signDeviceMessage({ deviceId: id, message: state, signer }))),
    );
    return { id, signer };
  };

  return {
    cp,
    clock,
    tokens,
    fake,
    model,
    published,
    call,
    device,
    async deliver(d, message) {
      await cp.rollouts.onDeviceMessage(
        deviceTopic(d.id, 'telemetry'),
        utf8(JSON.stringify(signDeviceMessage({ deviceId: d.id, message, signer: d.signer }))),
      );
      await cp.fl.idle(); // what the message set off in the background (a closed collection's pipeline)
    },
    close: () => cp.close(),
  };
}

async function expect(response: Response | Promise<Response>, status: number): Promise<void> {
  const res = await response;
  if (res.status !== status) throw new Error(`fixture: HTTP ${res.status}: ${await res.text()}`);
}

let updateCounter = 0;

/** An update's header and parts, ready to sign; `bytes` overrides the encoded tensors. */
export function updateMessages(input: {
  deviceId: string;
  roundId: string;
  model: BundleModelRef;
  tensors?: NamedTensor[];
  encoding?: 'int8' | 'float32';
  bytes?: Uint8Array;
  sampleCount?: number;
  status?: 'ok' | 'failed';
  updateId?: string;
  ts?: string;
}): { header: FlUpdateMessage; parts: FlUpdatePartMessage[]; bytes: Uint8Array } {
  const updateId =
    input.updateId ?? `upd-${String(++updateCounter).padStart(6, '0')}-${input.deviceId}`;
  const encoding = input.encoding ?? 'float32';
  const base = {
    schemaVersion: 1 as const,
    ts: input.ts ?? new Date(NOW_MS).toISOString(),
    deviceId: input.deviceId,
    roundId: input.roundId,
  };
  const metrics = {
    lossBefore: 0.5,
    lossAfter: 0.4,
    accuracyBefore: 0.8,
    accuracyAfter: 0.85,
    trainMs: 1200,
  };
  if (input.status === 'failed') {
    const header: FlUpdateMessage = {
      ...base,
      type: 'fl-update',
      id: updateId,
      model: input.model,
      status: 'failed',
      reason: 'too few labelled samples',
      sampleCount: 0,
      metrics,
    };
    return { header, parts: [], bytes: new Uint8Array() };
  }
  const bytes =
    input.bytes ?? encodeTensorSet(input.tensors ?? tensorsOf(() => 0.0001), { encoding });
  const partCount = flPartCount(bytes.length);
  const header: FlUpdateMessage = {
    ...base,
    type: 'fl-update',
    id: updateId,
    model: input.model,
    status: 'ok',
    sampleCount: input.sampleCount ?? 100,
    metrics,
    update: {
      encoding,
      sizeBytes: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      partCount,
      normBeforeClip: 0.5,
      clipped: false,
    },
  };
  const parts = Array.from({ length: partCount }, (_, index): FlUpdatePartMessage => ({
    ...base,
    type: 'fl-update-part',
    id: `${updateId}-p${index}`.slice(0, 64),
    updateId,
    index,
    count: partCount,
    data: toBase64(bytes.subarray(index * MAX_FL_PART_BYTES, (index + 1) * MAX_FL_PART_BYTES)),
  }));
  return { header, parts, bytes };
}
