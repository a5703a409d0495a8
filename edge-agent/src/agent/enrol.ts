/**
 * Enrolment, once per device: a signed enrolment request (the operator's
 * single-use token, the device's public key, hardware class and tags) posted
 * to the control plane's `POST /v1/enrol`. The answer names the broker and
 * carries the trust root, which the agent pins after checking it is signed by
 * a threshold of its own root keys (protocol `loadTrustedRoot`). From then on
 * the root changes only through a valid rotation chain.
 */
import {
  FleetError,
  fromBase64,
  loadTrustedRoot,
  signEnrolmentRequest,
  type TrustedRoot,
} from '@fleet/protocol';
import type { DeviceIdentity } from '../adapters/fs/identity-store.ts';

export interface EnrolOptions {
  controlPlaneUrl: string;
  token: string;
  identity: DeviceIdentity;
  agentVersion: string;
  nowMs: number;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

export interface Enrolment {
  mqttUrl: string | null;
  trustRoot: TrustedRoot;
}

export async function enrol(options: EnrolOptions): Promise<Enrolment> {
  const { identity } = options;
  const body = signEnrolmentRequest({
    token: options.token,
    deviceId: identity.stored.deviceId,
    publicKey: identity.publicKey,
    hardware: identity.stored.hardware,
    tags: identity.stored.tags,
    agentVersion: options.agentVersion,
    nowMs: options.nowMs,
    signer: identity.signer,
  });
  const url = new URL('/v1/enrol', options.controlPlaneUrl);
  const response = await (options.fetch ?? fetch)(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(body),
    signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
  });
  const json = (await response.json().catch(() => null)) as {
    error?: { code?: string; message?: string };
    trustRoot?: { envelope: string } | null;
    mqttUrl?: string | null;
  } | null;
  if (!response.ok) {
    throw new FleetError(
      'ENROLMENT_FAILED',
      `enrolment refused (${response.status} ${json?.error?.code ?? ''}): ${json?.error?.message ?? 'no reason given'}`,
    );
  }
  if (!json?.trustRoot) {
    throw new FleetError(
      'ENROLMENT_FAILED',
      'the control plane has no trust root installed yet; install one first',
    );
  }
  const trustRoot = await loadTrustedRoot(fromBase64(json.trustRoot.envelope));
  return { mqttUrl: json.mqttUrl ?? null, trustRoot };
}
