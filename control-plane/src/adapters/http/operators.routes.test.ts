/**
 * API tokens, the audit log, system endpoints, and the role matrix: every
 * /v1 route refuses a missing or unknown token (401) and the role just below
 * the one it needs (403), and admits that role.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { OPERATOR_ROLES, type OperatorRole } from '../../core/auth/operator-tokens.ts';
import { startTestControlPlane, type TestControlPlane } from '../../__fixtures__/control-plane.ts';

let t: TestControlPlane;
before(async () => {
  t = await startTestControlPlane();
  await t.enrolDevice({ id: 'matrix-1' });
});
after(() => t.close());

const body = async (res: Response) => (await res.json()) as Record<string, unknown>;

/** Every protected route, the role it needs, and a request that passes its schema. */
const PROTECTED: { method: string; path: string; role: OperatorRole; json?: unknown }[] = [
  { method: 'POST', path: '/v1/enrolment-tokens', role: 'operator', json: {} },
  { method: 'GET', path: '/v1/devices', role: 'viewer' },
  { method: 'GET', path: '/v1/devices/matrix-1', role: 'viewer' },
  {
    method: 'PATCH',
    path: '/v1/devices/matrix-1/tags',
    role: 'operator',
    json: { set: { a: 'b' } },
  },
  { method: 'POST', path: '/v1/devices/nobody/revoke', role: 'operator', json: { reason: 'x' } },
  { method: 'POST', path: '/v1/models', role: 'operator' },
  { method: 'GET', path: '/v1/models', role: 'viewer' },
  { method: 'GET', path: '/v1/models/m/versions', role: 'viewer' },
  { method: 'GET', path: '/v1/models/m/versions/1', role: 'viewer' },
  { method: 'GET', path: '/v1/models/m/versions/1/lineage', role: 'viewer' },
  { method: 'GET', path: '/v1/models/m/versions/1/bundle', role: 'viewer' },
  { method: 'PUT', path: '/v1/trust/root', role: 'admin' },
  { method: 'POST', path: '/v1/tokens', role: 'admin', json: { name: 'x', role: 'viewer' } },
  { method: 'GET', path: '/v1/tokens', role: 'admin' },
  { method: 'POST', path: '/v1/tokens/nope/revoke', role: 'admin' },
  { method: 'GET', path: '/v1/audit', role: 'viewer' },
  { method: 'GET', path: '/v1/audit/verify', role: 'viewer' },
  { method: 'POST', path: '/v1/broker/authenticate', role: 'viewer', json: { clientid: 'x' } },
  { method: 'POST', path: '/v1/broker/acl', role: 'viewer', json: { username: 'x', topic: 'y' } },
  { method: 'POST', path: '/v1/broker/superuser', role: 'viewer' },
  {
    method: 'POST',
    path: '/v1/rollouts',
    role: 'operator',
    json: { model: 'm@1.0.0', target: 'all' },
  },
  { method: 'GET', path: '/v1/rollouts', role: 'viewer' },
  { method: 'GET', path: '/v1/rollouts/nope', role: 'viewer' },
  { method: 'POST', path: '/v1/rollouts/nope/pause', role: 'operator', json: { reason: 'x' } },
  { method: 'POST', path: '/v1/rollouts/nope/resume', role: 'operator' },
  { method: 'POST', path: '/v1/rollouts/nope/abort', role: 'operator', json: { reason: 'x' } },
  {
    method: 'POST',
    path: '/v1/rollouts/nope/rollback',
    role: 'approver',
    json: { authorization: {}, reason: 'x' },
  },
  { method: 'GET', path: '/v1/drift', role: 'viewer' },
  { method: 'GET', path: '/v1/drift/alerts', role: 'viewer' },
  {
    method: 'POST',
    path: '/v1/fl/rounds',
    role: 'operator',
    json: { model: 'm@1.0.0', target: 'all', evalSet: 'e' },
  },
  { method: 'GET', path: '/v1/fl/rounds', role: 'viewer' },
  { method: 'GET', path: '/v1/fl/rounds/nope', role: 'viewer' },
  { method: 'POST', path: '/v1/fl/rounds/nope/cancel', role: 'operator', json: { reason: 'x' } },
  { method: 'POST', path: '/v1/fl/rounds/nope/approve', role: 'approver' },
  { method: 'PUT', path: '/v1/eval-sets/evalset-x', role: 'operator' },
  { method: 'GET', path: '/v1/eval-sets', role: 'viewer' },
  { method: 'PUT', path: '/v1/models/m/policy', role: 'admin', json: { riskTier: 'low' } },
  { method: 'GET', path: '/v1/models/m/policy', role: 'viewer' },
  { method: 'POST', path: '/v1/models/m/versions/1/approve', role: 'approver' },
];

describe('role matrix', () => {
  it('covers every protected route of the OpenAPI document', async () => {
    const doc = await body(await t.call('GET', '/openapi.json', { token: null }));
    const documented: string[] = [];
    for (const [path, ops] of Object.entries(
      doc.paths as Record<string, Record<string, { security?: unknown }>>,
    )) {
      for (const [method, op] of Object.entries(ops)) {
        if (op.security) documented.push(`${method.toUpperCase()} ${path}`);
      }
    }
    const tested = PROTECTED.map(
      (r) =>
        `${r.method} ${r.path.replace('matrix-1', '{id}').replace('nobody', '{id}').replace('nope', '{id}').replace('evalset-x', '{name}').replace('/m/', '/{name}/').replace('/1', '/{release}')}`,
    );
    assert.deepEqual([...new Set(tested)].sort(), documented.sort());
  });

  for (const route of PROTECTED) {
    it(`${route.method} ${route.path} needs ${route.role}`, async () => {
      const send = (token: string | null) =>
        t.call(route.method, route.path, { token, json: route.json });
      const none = await send(null);
      assert.equal(none.status, 401);
      assert.equal(((await body(none)).error as { code: string }).code, 'UNAUTHENTICATED');
      assert.equal((await send(`fleet_${'x'.repeat(43)}`)).status, 401);
      assert.equal((await send('not-a-token')).status, 401);
      const rank = OPERATOR_ROLES.indexOf(route.role);
      if (rank > 0) {
        const below = await send(t.tokens[OPERATOR_ROLES[rank - 1]!]);
        assert.equal(below.status, 403);
        assert.equal(((await body(below)).error as { code: string }).code, 'FORBIDDEN');
      }
      const allowed = await send(t.tokens[route.role]);
      assert.ok(![401, 403].includes(allowed.status), `${route.role} got ${allowed.status}`);
    });
  }
});

describe('API tokens', () => {
  it('creates a token whose secret works once shown, lists without secrets, revokes it', async () => {
    const res = await t.call('POST', '/v1/tokens', { json: { name: 'ci', role: 'viewer' } });
    assert.equal(res.status, 201);
    const created = await body(res);
    assert.match(created.secret as string, /^fleet_/);
    assert.equal(
      (await t.call('GET', '/v1/devices', { token: created.secret as string })).status,
      200,
    );
    const listed = JSON.stringify(await body(await t.call('GET', '/v1/tokens')));
    assert.ok(!listed.includes(created.secret as string));
    assert.ok(!listed.includes('tokenHash'));
    assert.equal((await t.call('POST', `/v1/tokens/${created.id as string}/revoke`)).status, 200);
    assert.equal(
      (await t.call('GET', '/v1/devices', { token: created.secret as string })).status,
      401,
    );
    assert.equal((await t.call('POST', `/v1/tokens/${created.id as string}/revoke`)).status, 409);
  });

  it('refuses an unknown role, naming the field', async () => {
    const res = await t.call('POST', '/v1/tokens', { json: { name: 'x', role: 'root' } });
    assert.equal(res.status, 400);
    assert.match(((await body(res)).error as { message: string }).message, /^role/);
  });
});

describe('audit log', () => {
  it('records every change with actor and pages in order', async () => {
    const entries = (await body(await t.call('GET', '/v1/audit?limit=1000'))).entries as {
      seq: number;
      action: string;
      actor: string;
    }[];
    assert.deepEqual(
      entries.map((e) => e.seq),
      entries.map((_, i) => i + 1),
    );
    const actions = new Set(entries.map((e) => e.action));
    for (const a of [
      'token.created',
      'enrolment-token.created',
      'device.enrolled',
      'device.tagged',
      'token.revoked',
    ]) {
      assert.ok(actions.has(a), a);
    }
    const page = (await body(await t.call('GET', '/v1/audit?after=2&limit=2'))).entries as {
      seq: number;
    }[];
    assert.deepEqual(
      page.map((e) => e.seq),
      [3, 4],
    );
  });

  it('verifies the chain, and names an edited row or a cut-off tail', async () => {
    const ok = await body(await t.call('GET', '/v1/audit/verify'));
    assert.equal(ok.ok, true);
    const head = ok.head as { seq: number; hash: string };
    await t.cp.database.db.execute(
      sql`update audit_log set actor = 'token:someone-else' where seq = 2`,
    );
    const edited = await body(await t.call('GET', '/v1/audit/verify'));
    assert.deepEqual(edited, { ok: false, seq: 2, problem: 'edited' });
    await t.cp.database.db.execute(sql`delete from audit_log where seq >= 2`);
    const cut = await body(
      await t.call('GET', `/v1/audit/verify?headSeq=${head.seq}&headHash=${head.hash}`),
    );
    assert.equal(cut.ok, false);
    assert.equal(cut.problem, 'truncated');
  });
});

describe('system endpoints', () => {
  it('serves health, Prometheus metrics, the OpenAPI document and its reference page', async () => {
    const health = await t.call('GET', '/healthz', { token: null });
    assert.equal(health.status, 200);
    assert.deepEqual(await body(health), { status: 'ok', checks: { database: 'ok' } });
    const metrics = await (await t.call('GET', '/metrics', { token: null })).text();
    assert.match(
      metrics,
      /fleet_http_requests_total\{method="GET",route="\/v1\/devices",status="200"\} \d+/,
    );
    assert.match(metrics, /fleet_devices\{status="offline"\} 1/);
    assert.match(metrics, /fleet_enrolments_total\{result="ok"\} 1/);
    const doc = await body(await t.call('GET', '/openapi.json', { token: null }));
    assert.equal(doc.openapi, '3.1.0');
    const docs = await t.call('GET', '/docs', { token: null });
    assert.match(await docs.text(), /<html/i);
  });

  it('answers unknown routes with the error shape', async () => {
    const res = await t.call('GET', '/v1/nothing');
    assert.equal(res.status, 404);
    assert.equal(((await body(res)).error as { code: string }).code, 'NOT_FOUND');
  });
});
