/**
 * Runs one `fleet-agent` on a device from its config: identity (key created
 * once), enrolment (once, with the operator's token; the trust root it
 * returns is pinned), the filesystem stores in the data dir, the ONNX model
 * host, the local inference API, then the agent's MQTT life.
 */
import { mkdir } from 'node:fs/promises';
import { FleetError, loadTrustedRoot, type TrustedRoot } from '@fleet/protocol';
import type { AgentConfig } from './config.ts';
import { createIdentityStore } from './adapters/fs/identity-store.ts';
import { createFsStateStore } from './adapters/fs/fs-state-store.ts';
import { createFsDownloadStore } from './adapters/fs/fs-download-store.ts';
import { createFsSlotStore } from './adapters/fs/fs-slot-store.ts';
import { createFsDriftOutboxStore } from './adapters/fs/fs-drift-outbox-store.ts';
import { createFsLabelStore } from './adapters/fs/fs-label-store.ts';
import { createOnnxModelHost } from './adapters/onnx/onnx-model-host.ts';
import { createInferApi, serveInferApi } from './adapters/http/infer-api.ts';
import { enrol } from './agent/enrol.ts';
import { AGENT_VERSION, createFleetAgent, type FleetAgent } from './agent/fleet-agent.ts';

export interface RunningAgent {
  agent: FleetAgent;
  deviceId: string;
  inferUrl: string | null;
  close(): Promise<void>;
}

export async function runAgent(
  config: AgentConfig,
  log: (line: string) => void,
): Promise<RunningAgent> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const identities = createIdentityStore(config.dataDir);
  let identity = await identities.loadOrCreate({
    deviceId: config.deviceId,
    hardware: config.hardware,
    tags: config.tags,
  });
  const deviceId = identity.stored.deviceId;
  let root: TrustedRoot;
  const pinned = await identities.loadTrustRoot();
  if (!identity.stored.enrolled || !pinned) {
    if (!config.enrollToken) {
      throw new FleetError(
        'AGENT_CONFIG',
        `device ${deviceId} is not enrolled yet: pass --enroll-token`,
      );
    }
    log(`enrolling ${deviceId} with ${config.controlPlaneUrl}`);
    const enrolment = await enrol({
      controlPlaneUrl: config.controlPlaneUrl,
      token: config.enrollToken,
      identity,
      agentVersion: AGENT_VERSION,
      nowMs: Date.now(),
    });
    await identities.saveTrustRoot(enrolment.trustRoot.envelopeBytes);
    identity = await identities.markEnrolled(identity, {
      controlPlaneUrl: config.controlPlaneUrl,
      mqttUrl: enrolment.mqttUrl,
      at: new Date().toISOString(),
    });
    root = enrolment.trustRoot;
  } else {
    root = await loadTrustedRoot(pinned);
  }
  const mqttUrl = config.brokerUrl ?? identity.stored.enrolled?.mqttUrl;
  if (!mqttUrl)
    throw new FleetError(
      'AGENT_CONFIG',
      'no broker URL: the control plane named none; pass --broker',
    );

  const host = createOnnxModelHost();
  const agent = createFleetAgent({
    deviceId,
    hardware: identity.stored.hardware,
    signer: identity.signer,
    mqttUrl,
    trustRoot: () => root,
    stores: {
      state: createFsStateStore(config.dataDir),
      downloads: createFsDownloadStore(config.dataDir),
      slots: createFsSlotStore(config.dataDir),
      driftOutbox: createFsDriftOutboxStore(config.dataDir),
      labels: createFsLabelStore({
        dataDir: config.dataDir,
        nowMs: () => Date.now(),
        retention: {
          maxSamples: config.feedback.maxSamples,
          maxAgeMs: config.feedback.maxSampleAgeMs,
        },
      }),
    },
    host,
    feedback: {
      recent: { maxRows: config.feedback.recentMaxRows, maxAgeMs: config.feedback.recentMaxAgeMs },
    },
    tickIntervalMs: config.tickIntervalMs,
    healthIntervalMs: config.healthIntervalMs,
    onEvent: (event) => log(JSON.stringify({ deviceId, ...event })),
  });
  await agent.start();
  log(`agent ${deviceId} connected to ${mqttUrl}`);
  let inferServer: { port: number; close(): Promise<void> } | null = null;
  if (config.inferPort !== null) {
    inferServer = await serveInferApi(
      createInferApi(host.inference, { feedback: agent.feedbackService() }),
      {
        host: config.inferHost,
        port: config.inferPort,
      },
    );
    log(`inference API on http://${config.inferHost}:${inferServer.port}/v1/infer`);
  }
  return {
    agent,
    deviceId,
    inferUrl: inferServer ? `http://${config.inferHost}:${inferServer.port}` : null,
    async close() {
      await inferServer?.close();
      await agent.close();
    },
  };
}
