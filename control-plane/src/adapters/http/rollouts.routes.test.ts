/**
 * Rollout routes through `app.request()` on an in-memory control plane (no
 * broker: commands are built and dropped): creation over the devices a
 * selector matches, the status view, pause / resume / abort and their audit
 * entries, and every refusal (bad bodies naming the field, unknown model,
 * a target matching nothing, actions on a finished rollout) changing nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { packSample, testTrust, type TestTrust } from '@fleet/protocol/testing';
import { startTestControlPlane, type TestControlPlane } from '../../__fixtures__/control-plane.ts';

let t: TestControlPlane;
let trust: TestTrust;
const body = async (res: Response) => (await res.json()) as Record<string, unknown>;
const errorOf = async (res: Response) =>
  (await body(res)).error as { code: string; message: string };

before(async () => {
  t = await startTestControlPlane();
  trust = await testTrust();
  await t.call('PUT', '/v1/trust/root', { body: trust.rootBytes });
  const bundle = await packSample(trust.bundleKeys.slice(0, 2), { version: '1.0.0', release: 1 });
  assert.equal((await t.call('POST', '/v1/models', { body: bundle })).status, 201);
  for (let i = 0; i < 10; i++) {
    await t.enrolDevice({ id: `ro-${i}`, tags: { site: i < 4 ? 'berlin' : 'lagos' } });
  }
});
after(() => t.close());

const create = (json: unknown) =>
  t.call('POST', '/v1/rollouts', { json, token: t.tokens.operator });
const rolloutCount = async () =>
  ((await body(await t.call('GET', '/v1/rollouts'))).rollouts as unknown[]).length;

describe('rollouts API', () => {
  it('creates a rollout over the matching devices, in waves, and shows it', async () => {
    const res = await create({
      model: 'mnist-2nn@1.0.0',
      target: 'tag:site=berlin',
      waves: '1,100%',
      bake: '1m',
    });
    assert.equal(res.status, 201, JSON.stringify(await body(res.clone())));
    const view = await body(res);
    assert.equal(view.status, 'running');
    assert.deepEqual(view.counts, { sent: 1, pending: 3 });
    const waves = view.waves as { wave: number; size: number }[];
    assert.deepEqual(
      waves.map((w) => w.size),
      [1, 3],
    );
    const shown = await body(await t.call('GET', `/v1/rollouts/${String(view.id)}`));
    assert.equal((shown.devices as unknown[]).length, 4);
    const listed = (await body(await t.call('GET', '/v1/rollouts'))).rollouts as { id: string }[];
    assert.ok(listed.some((r) => r.id === view.id));
  });

  it('pauses, resumes and aborts, each in the audit log with its actor; a finished rollout refuses more', async () => {
    const view = await body(await create({ model: 'mnist-2nn@1.0.0', target: 'all' }));
    const id = String(view.id);
    const act = (action: string, json?: unknown) =>
      t.call('POST', `/v1/rollouts/${id}/${action}`, {
        token: t.tokens.operator,
        ...(json ? { json } : {}),
      });
    assert.equal((await body(await act('pause', { reason: 'lunch' }))).status, 'paused');
    assert.equal((await body(await act('resume'))).status, 'running');
    const aborted = await body(await act('abort', { reason: 'wrong model' }));
    assert.equal(aborted.status, 'aborted');
    assert.match(String(aborted.reason), /wrong model/);
    const again = await act('resume');
    assert.equal(again.status, 409);
    assert.equal((await errorOf(again)).code, 'CONFLICT');
    const actions = (await t.cp.audit.list()).map((e) => e.action);
    for (const a of ['rollout.create', 'rollout.paused', 'rollout.resumed', 'rollout.aborted']) {
      assert.ok(actions.includes(a), `${a} in ${actions.join(', ')}`);
    }
  });

  it('refuses bad requests naming the field, and stores nothing', async () => {
    const before = await rolloutCount();
    const auditBefore = (await t.cp.audit.list()).length;
    const cases: [unknown, number, string, RegExp][] = [
      [{ model: 'mnist-2nn', target: 'all' }, 400, 'INVALID_REQUEST', /model/],
      [{ model: 'mnist-2nn@1.0.0', target: '' }, 400, 'INVALID_REQUEST', /target/],
      [
        { model: 'mnist-2nn@1.0.0', target: 'all', waves: '10%,5%' },
        400,
        'INVALID_REQUEST',
        /waves/,
      ],
      [{ model: 'mnist-2nn@1.0.0', target: 'all', bake: 'soon' }, 400, 'INVALID_REQUEST', /bake/],
      [
        { model: 'mnist-2nn@1.0.0', target: 'all', maxFailure: '150%' },
        400,
        'INVALID_REQUEST',
        /maxFailure|ratio/,
      ],
      [
        { model: 'mnist-2nn@1.0.0', target: 'all', surprise: 1 },
        400,
        'INVALID_REQUEST',
        /surprise|unrecognized/i,
      ],
      [{ model: 'mnist-2nn@9.9.9', target: 'all' }, 404, 'NOT_FOUND', /9\.9\.9/],
      [
        { model: 'mnist-2nn@1.0.0', target: 'tag:site=nowhere' },
        400,
        'INVALID_REQUEST',
        /matches no device/,
      ],
    ];
    for (const [json, status, code, message] of cases) {
      const res = await create(json);
      assert.equal(res.status, status, JSON.stringify(json));
      const error = await errorOf(res);
      assert.equal(error.code, code, JSON.stringify(json));
      assert.match(error.message, message, JSON.stringify(json));
    }
    assert.equal(await rolloutCount(), before);
    assert.equal((await t.cp.audit.list()).length, auditBefore);
    assert.equal((await t.call('GET', '/v1/rollouts/r-unknown-id')).status, 404);
  });
});
