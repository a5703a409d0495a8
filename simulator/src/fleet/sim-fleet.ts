/**
 * A fleet of real agents in one process (issue "fleet harness"): each agent
 * is a full `fleet-agent` core (its own ed25519 key, enrolment, MQTT session,
 * persisted update state, downloads and slots) with in-memory stores, and
 * all of them share one onnxruntime model runtime, so a thousand agents on
 * one bundle hold one ONNX session.
 *
 * `crash(i)` cuts an agent off as a power cut would (no DISCONNECT; the broker
 * publishes its will) and `restart(i)` boots a fresh agent on the same stores,
 * which is how the fault tests kill an agent at a persisted step.
 */
import { keyIdOf, toBase64, type TrustedRoot } from '@fleet/protocol';
import { generateKeyPairNative, nativeSigner } from '@fleet/protocol/node';
import {
  createFleetAgent,
  createMemoryDownloadStore,
  createMemorySlotStore,
  createMemoryStateStore,
  createModelRuntime,
  createOnnxModelHost,
  enrol,
  type DeviceIdentity,
  type FleetAgent,
  type FleetAgentOptions,
  type ModelRuntime,
  type OnnxModelHost,
} from '@fleet/edge-agent';

export interface SimFleetOptions {
  controlPlaneUrl: string;
  /** An operator (or admin) API token, to create enrolment tokens. */
  operatorToken: string;
  mqttUrl: string;
  count: number;
  idPrefix?: string;
  hardware?: (index: number) => string;
  tags?: (index: number) => Record<string, string>;
  /** Shared model runtime; one is created when omitted. */
  runtime?: ModelRuntime;
  /** Agent timing and session settings for every agent. */
  agentOptions?: Partial<
    Pick<
      FleetAgentOptions,
      'tickIntervalMs' | 'healthIntervalMs' | 'session' | 'downloader' | 'trainer' | 'feedback'
    >
  >;
  /**
   * Per-agent settings over `agentOptions`: a Byzantine device's forged
   * federated updates (`flUpdateOverride`, simulation only).
   */
  agentOverrides?: (index: number) => Partial<Pick<FleetAgentOptions, 'flUpdateOverride'>>;
  /** Agents enrolled and connected at a time. */
  concurrency?: number;
  onProgress?: (started: number, total: number) => void;
}

export interface SimAgent {
  readonly id: string;
  readonly hardware: string;
  agent: FleetAgent;
  host: OnnxModelHost;
  /** Cuts the agent off like a power cut: no clean disconnect, nothing more persisted. */
  crash(): void;
  /** Boots a new agent on the same stores (after `crash`), and connects it. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface SimFleet {
  agents: SimAgent[];
  runtime: ModelRuntime;
  trustRoot: TrustedRoot;
  /** Enrols and starts one more agent (a device enrolled mid-rollout). */
  add(index: number): Promise<SimAgent>;
  close(): Promise<void>;
}

async function api<T>(url: string, token: string, path: string, body: unknown): Promise<T> {
  const response = await fetch(new URL(path, url), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const json = (await response.json()) as T & { error?: { message: string } };
  if (!response.ok) throw new Error(`${path}: ${response.status} ${json.error?.message ?? ''}`);
  return json;
}

async function newIdentity(
  deviceId: string,
  hardware: string,
  tags: Record<string, string>,
): Promise<DeviceIdentity> {
  const pair = generateKeyPairNative();
  return {
    stored: {
      schemaVersion: 1,
      deviceId,
      publicKey: toBase64(pair.publicKey),
      secretKey: toBase64(pair.secretKey),
      hardware,
      tags,
      enrolled: null,
    },
    publicKey: pair.publicKey,
    signer: nativeSigner({ keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey }),
  };
}

export async function startSimFleet(options: SimFleetOptions): Promise<SimFleet> {
  const runtime = options.runtime ?? createModelRuntime();
  const prefix = options.idPrefix ?? 'sim';
  let trustRoot: TrustedRoot | null = null;

  async function add(index: number): Promise<SimAgent> {
    const id = `${prefix}-${String(index).padStart(5, '0')}`;
    const hardware = options.hardware?.(index) ?? 'sim-cpu';
    const tags = options.tags?.(index) ?? {};
    const { token } = await api<{ token: string }>(
      options.controlPlaneUrl,
      options.operatorToken,
      '/v1/enrolment-tokens',
      {
        tags: {},
      },
    );
    const identity = await newIdentity(id, hardware, tags);
    const enrolment = await enrol({
      controlPlaneUrl: options.controlPlaneUrl,
      token,
      identity,
      agentVersion: '0.1.0',
      nowMs: Date.now(),
    });
    trustRoot ??= enrolment.trustRoot;
    const root = trustRoot;
    const stores = {
      state: createMemoryStateStore(),
      downloads: createMemoryDownloadStore(),
      slots: createMemorySlotStore(),
    };
    const build = () => {
      const host = createOnnxModelHost({ runtime });
      const agent = createFleetAgent({
        deviceId: id,
        hardware,
        signer: identity.signer,
        mqttUrl: options.mqttUrl,
        trustRoot: () => root,
        stores,
        host,
        ...options.agentOptions,
        ...options.agentOverrides?.(index),
      });
      return { host, agent };
    };
    let current = build();
    await current.agent.start();
    const sim: SimAgent = {
      id,
      hardware,
      get agent() {
        return current.agent;
      },
      get host() {
        return current.host;
      },
      crash() {
        current.agent.crash();
        for (const slot of ['a', 'b'] as const) current.host.unload(slot);
      },
      async restart() {
        current = build();
        await current.agent.start();
      },
      close: () => current.agent.close(),
    };
    return sim;
  }

  const agents: SimAgent[] = new Array<SimAgent>(options.count);
  const concurrency = options.concurrency ?? 25;
  let next = 0;
  let started = 0;
  async function worker(): Promise<void> {
    while (next < options.count) {
      const index = next++;
      agents[index] = await add(index);
      options.onProgress?.(++started, options.count);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, options.count) }, worker));

  return {
    agents,
    runtime,
    get trustRoot() {
      return trustRoot!;
    },
    add,
    async close() {
      await Promise.allSettled(agents.map((a) => a?.close()));
    },
  };
}
