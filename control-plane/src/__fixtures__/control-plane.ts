/**
 * Test fixture: an in-memory control plane (PGlite in memory, blobs in
 * memory, no listeners) on a clock the test moves, with one API token per
 * role and small helpers to call the API through `app.request()` and to make
 * enrolled devices.
 */
import { generateKeyPair, keyIdOf, signEnrolmentRequest, type Signer } from '@fleet/protocol';
import { NOW_MS } from '@fleet/protocol/testing';
import { pino } from 'pino';
import { mergeConfig } from '../config.ts';
import { createControlPlane, type ControlPlane } from '../control-plane.ts';
import { OPERATOR_ROLES, type OperatorRole } from '../core/auth/operator-tokens.ts';

export interface TestControlPlane {
  cp: ControlPlane;
  clock: { nowMs: number };
  /** An API token secret per role (the admin one is the bootstrap token). */
  tokens: Record<OperatorRole, string>;
  call(
    method: string,
    path: string,
    options?: {
      token?: string | null;
      json?: unknown;
      body?: Uint8Array | string;
      contentType?: string;
    },
  ): Promise<Response>;
  /** Enrols a device with a fresh key and token; returns its id and key. */
  enrolDevice(options?: {
    id?: string;
    hardware?: string;
    tags?: Record<string, string>;
  }): Promise<{ id: string; signer: Signer; publicKey: Uint8Array; response: Response }>;
  close(): Promise<void>;
}

export async function startTestControlPlane(): Promise<TestControlPlane> {
  const clock = { nowMs: NOW_MS };
  const cp = await createControlPlane({
    config: mergeConfig({ maxBundleBytes: 2 * 1024 * 1024 }),
    nowMs: () => clock.nowMs,
    logger: pino({ level: 'silent' }),
    inMemory: true,
  });
  const admin = cp.firstAdminToken!;
  const tokens = { admin } as Record<OperatorRole, string>;
  for (const role of OPERATOR_ROLES.filter((r) => r !== 'admin')) {
    tokens[role] = (
      await cp.operators.create({ name: `${role} for tests`, role }, 'system')
    ).secret;
  }

  const call: TestControlPlane['call'] = (method, path, options = {}) => {
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? tokens.admin : options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | Uint8Array<ArrayBuffer> | undefined;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      headers['content-type'] = options.contentType ?? 'application/octet-stream';
      body = typeof options.body === 'string' ? options.body : new Uint8Array(options.body);
    }
    return Promise.resolve(cp.app.request(path, { method, headers, body }));
  };

  let deviceCounter = 0;
  const enrolDevice: TestControlPlane['enrolDevice'] = async (options = {}) => {
    const created = (await (
      await call('POST', '/v1/enrolment-tokens', { json: {}, token: tokens.operator })
    ).json()) as { token: string };
    const pair = generateKeyPair();
    const signer = { keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey };
    const id = options.id ?? `dev-${++deviceCounter}`;
    const request = signEnrolmentRequest({
      token: created.token,
      deviceId: id,
      publicKey: pair.publicKey,
      hardware: options.hardware ?? 'rpi4',
      tags: options.tags ?? {},
      agentVersion: '0.1.0',
      nowMs: clock.nowMs,
      signer,
    });
    const response = await call('POST', '/v1/enrol', {
      token: null,
      body: request,
      contentType: 'application/json',
    });
    return { id, signer, publicKey: pair.publicKey, response };
  };

  return { cp, clock, tokens, call, enrolDevice, close: () => cp.close() };
}
