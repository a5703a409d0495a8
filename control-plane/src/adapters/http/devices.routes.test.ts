/**
 * Device routes through `app.request()`: enrolment tokens, enrolment and its
 * refusals (each changing nothing), listing with filters and pagination,
 * tagging and revocation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  fromBase64,
  fromUtf8,
  generateKeyPair,
  keyIdOf,
  signEnrolmentRequest,
  toBase64,
  utf8,
} from '@fleet/protocol';
import { startTestControlPlane, type TestControlPlane } from '../../__fixtures__/control-plane.ts';

let t: TestControlPlane;
before(async () => {
  t = await startTestControlPlane();
});
after(() => t.close());

const body = async (res: Response) => (await res.json()) as Record<string, unknown>;
const auditCount = async () => (await t.cp.audit.list()).length;
async function deviceCount() {
  const res = await t.call('GET', '/v1/devices?limit=500');
  return ((await body(res)).devices as unknown[]).length;
}
async function enrolmentToken(json: Record<string, unknown> = {}) {
  const res = await t.call('POST', '/v1/enrolment-tokens', { json, token: t.tokens.operator });
  assert.equal(res.status, 201);
  return (await body(res)).token as string;
}
async function signedRequest(token: string, id: string, hardware = 'rpi4') {
  const pair = generateKeyPair();
  return signEnrolmentRequest({
    token,
    deviceId: id,
    publicKey: pair.publicKey,
    hardware,
    tags: { site: 'lab' },
    agentVersion: '0.1.0',
    nowMs: t.clock.nowMs,
    signer: { keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey },
  });
}
const enrol = (request: Uint8Array | string) =>
  t.call('POST', '/v1/enrol', { token: null, body: request, contentType: 'application/json' });

/** Asserts `res` is the error `code`, and that no device or audit row was added. */
async function assertRefusedWithoutChange(
  res: Promise<Response>,
  status: number,
  code: string,
  message?: RegExp,
) {
  const [devicesBefore, auditBefore] = [await deviceCount(), await auditCount()];
  const response = await res;
  const json = await body(response);
  assert.equal(response.status, status, JSON.stringify(json));
  const error = json.error as { code: string; message: string };
  assert.equal(error.code, code);
  if (message) assert.match(error.message, message);
  assert.equal(await deviceCount(), devicesBefore);
  assert.equal(await auditCount(), auditBefore);
}

describe('enrolment', () => {
  it('enrols a device with a signed request and a token, merging pre-set tags', async () => {
    const token = await enrolmentToken({ tags: { fleet: 'north' }, hardware: 'rpi4' });
    const res = await enrol(await signedRequest(token, 'pump-1'));
    assert.equal(res.status, 201);
    const enrolled = await body(res);
    assert.equal(enrolled.trustRoot, null); // none installed in this suite
    assert.equal(enrolled.mqttUrl, null); // no broker in app-only tests
    const device = enrolled.device as Record<string, unknown>;
    assert.equal(device.id, 'pump-1');
    assert.deepEqual(device.tags, { site: 'lab', fleet: 'north' });
    assert.equal(device.status, 'offline');
    const entry = (await t.cp.audit.list()).at(-1)!;
    assert.equal(entry.action, 'device.enrolled');
    assert.equal(entry.actor, 'device:pump-1');
  });

  it('refuses a used token, and changes nothing', async () => {
    const token = await enrolmentToken();
    assert.equal((await enrol(await signedRequest(token, 'pump-2'))).status, 201);
    await assertRefusedWithoutChange(
      enrol(await signedRequest(token, 'pump-3')),
      403,
      'ENROLMENT_REFUSED',
    );
  });

  it('refuses an expired token and one for other hardware', async () => {
    const token = await enrolmentToken({ ttlSeconds: 60 });
    t.clock.nowMs += 61_000;
    try {
      await assertRefusedWithoutChange(
        enrol(await signedRequest(token, 'late-1')),
        403,
        'ENROLMENT_REFUSED',
      );
    } finally {
      t.clock.nowMs -= 61_000;
    }
    const jetson = await enrolmentToken({ hardware: 'jetson-nano' });
    await assertRefusedWithoutChange(
      enrol(await signedRequest(jetson, 'wrong-hw', 'rpi4')),
      403,
      'ENROLMENT_REFUSED',
      /jetson-nano/,
    );
  });

  it('refuses an id that differs from an enrolled one only in case; the token stays usable', async () => {
    const token = await enrolmentToken();
    await assertRefusedWithoutChange(
      enrol(await signedRequest(token, 'PUMP-1')),
      409,
      'CONFLICT',
      /taken/,
    );
    assert.equal((await enrol(await signedRequest(token, 'pump-9'))).status, 201);
  });

  it('refuses malformed, tampered and unknown-token requests without change', async () => {
    await assertRefusedWithoutChange(enrol('{not json'), 400, 'INVALID_REQUEST');
    await assertRefusedWithoutChange(
      enrol('{"payloadType":"x"}'),
      400,
      'INVALID_REQUEST',
      /payload/,
    );
    const token = await enrolmentToken();
    const envelope = JSON.parse(fromUtf8(await signedRequest(token, 'evil-1'))) as {
      payload: string;
    };
    const payload = JSON.parse(fromUtf8(fromBase64(envelope.payload))) as Record<string, unknown>;
    payload.deviceId = 'evil-2';
    envelope.payload = toBase64(utf8(JSON.stringify(payload)));
    await assertRefusedWithoutChange(enrol(JSON.stringify(envelope)), 422, 'SIGNATURE_THRESHOLD');
    const unknown = `enr_${'B'.repeat(43)}`;
    await assertRefusedWithoutChange(
      enrol(await signedRequest(unknown, 'ghost')),
      403,
      'ENROLMENT_REFUSED',
    );
  });

  it('refuses an oversize enrolment body before reading it all, without change', async () => {
    const huge = JSON.stringify({ payloadType: 'x', payload: 'A'.repeat(100_000), signatures: [] });
    await assertRefusedWithoutChange(enrol(huge), 413, 'PAYLOAD_TOO_LARGE', /65536 bytes/);
  });

  it('refuses an enrolment-token request with bad fields, naming the field', async () => {
    const res = await t.call('POST', '/v1/enrolment-tokens', {
      json: { tags: { site: 'has space' } },
      token: t.tokens.operator,
    });
    assert.equal(res.status, 400);
    assert.match(((await body(res)).error as { message: string }).message, /tags\.site/);
    const extra = await t.call('POST', '/v1/enrolment-tokens', {
      json: { admin: true },
      token: t.tokens.operator,
    });
    assert.equal(extra.status, 400);
  });
});

describe('device listing', () => {
  before(async () => {
    for (let i = 0; i < 12; i++) {
      const res = (
        await t.enrolDevice({
          id: `list-${String(i).padStart(2, '0')}`,
          hardware: i % 3 === 0 ? 'jetson-nano' : 'rpi4',
          tags: { site: i % 2 === 0 ? 'berlin' : 'paris', line: `l${i % 4}` },
        })
      ).response;
      assert.equal(res.status, 201);
    }
  });

  it('filters by tags (all must match) and hardware', async () => {
    const ids = async (query: string) =>
      ((await body(await t.call('GET', `/v1/devices?${query}`))).devices as { id: string }[]).map(
        (d) => d.id,
      );
    const berlin = await ids('tag=site%3Dberlin');
    assert.deepEqual(
      berlin.filter((id) => id.startsWith('list-')),
      ['list-00', 'list-02', 'list-04', 'list-06', 'list-08', 'list-10'],
    );
    assert.deepEqual(await ids('tag=site%3Dberlin&tag=line%3Dl0'), [
      'list-00',
      'list-04',
      'list-08',
    ]);
    assert.deepEqual(await ids('hardware=jetson-nano&tag=site%3Dparis'), ['list-03', 'list-09']);
    assert.deepEqual(await ids('status=online'), []);
  });

  it('filters by connection status and last seen', async () => {
    const ids = async (query: string) =>
      ((await body(await t.call('GET', `/v1/devices?${query}`))).devices as { id: string }[]).map(
        (d) => d.id,
      );
    await t.cp.devices.onConnection('list-01', true); // seen now (the test clock)
    await t.cp.devices.onConnection('list-02', true);
    await t.cp.devices.onConnection('list-02', false);
    assert.deepEqual(await ids('status=online'), ['list-01']);
    assert.deepEqual(await ids('status=online&tag=site%3Dparis'), ['list-01']);
    assert.deepEqual(await ids('status=online&tag=site%3Dberlin'), []);
    assert.deepEqual(await ids('lastSeenAfter=2026-11-26T11:00:00Z'), ['list-01', 'list-02']);
    assert.deepEqual(await ids('lastSeenAfter=2026-11-26T11:00:00Z&status=offline&hardware=rpi4'), [
      'list-02',
    ]);
    assert.deepEqual(
      await ids('lastSeenBefore=2026-11-26T11:00:00Z&lastSeenAfter=2026-01-01T00:00:00Z'),
      [],
    );
  });

  it('pages through every device exactly once with the cursor', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await t.call('GET', `/v1/devices?limit=5${cursor ? `&cursor=${cursor}` : ''}`, {
        token: t.tokens.viewer,
      });
      const page = await body(res);
      seen.push(...(page.devices as { id: string }[]).map((d) => d.id));
      cursor = page.nextCursor as string | null;
    } while (cursor);
    assert.equal(seen.length, new Set(seen).size);
    assert.equal(seen.length, await deviceCount());
    assert.deepEqual(seen, [...seen].sort());
  });

  it('refuses bad filters with 400 naming the parameter', async () => {
    for (const [query, field] of [
      ['tag=nokey', /tag/],
      ['limit=100000', /limit/],
      ['status=sleeping', /status/],
      ['cursor=!!!', /cursor/],
      ['lastSeenAfter=yesterday', /lastSeenAfter/],
    ] as const) {
      const res = await t.call('GET', `/v1/devices?${query}`);
      assert.equal(res.status, 400, query);
      assert.match(((await body(res)).error as { message: string }).message, field);
    }
  });

  it('gets one device, 404 for an unknown one', async () => {
    assert.equal((await body(await t.call('GET', '/v1/devices/list-03'))).hardware, 'jetson-nano');
    const res = await t.call('GET', '/v1/devices/nobody');
    assert.equal(res.status, 404);
    assert.equal(((await body(res)).error as { code: string }).code, 'NOT_FOUND');
  });
});

describe('tags and revocation', () => {
  it('sets and removes tags, audited with before and after', async () => {
    await t.enrolDevice({ id: 'tag-me', tags: { site: 'oslo', old: 'yes' } });
    const res = await t.call('PATCH', '/v1/devices/tag-me/tags', {
      json: { set: { site: 'bergen' }, remove: ['old'] },
      token: t.tokens.operator,
    });
    assert.equal(res.status, 200);
    assert.deepEqual((await body(res)).tags, { site: 'bergen' });
    const entry = (await t.cp.audit.list()).at(-1)!;
    assert.equal(entry.action, 'device.tagged');
    assert.deepEqual((entry.before as { tags: unknown }).tags, { site: 'oslo', old: 'yes' });
    assert.deepEqual((entry.after as { tags: unknown }).tags, { site: 'bergen' });
  });

  it('refuses a malformed tag edit without change', async () => {
    const auditBefore = await auditCount();
    for (const json of [
      { set: { 'Bad Key': 'x' } },
      { remove: 'site' },
      { set: { site: '' } },
      { rename: {} },
    ]) {
      const res = await t.call('PATCH', '/v1/devices/tag-me/tags', {
        json,
        token: t.tokens.operator,
      });
      assert.equal(res.status, 400, JSON.stringify(json));
    }
    assert.deepEqual((await body(await t.call('GET', '/v1/devices/tag-me'))).tags, {
      site: 'bergen',
    });
    assert.equal(await auditCount(), auditBefore);
    assert.equal(
      (await t.call('PATCH', '/v1/devices/nobody/tags', { json: { set: { a: 'b' } } })).status,
      404,
    );
  });

  it('revokes a device: refused by the broker directory, twice is a conflict', async () => {
    await t.enrolDevice({ id: 'stolen' });
    const res = await t.call('POST', '/v1/devices/stolen/revoke', {
      json: { reason: 'stolen' },
      token: t.tokens.operator,
    });
    assert.equal(res.status, 200);
    assert.equal((await body(res)).status, 'revoked');
    assert.equal((await t.cp.devices.lookup('stolen'))?.revoked, true);
    const again = await t.call('POST', '/v1/devices/stolen/revoke', { json: { reason: 'x' } });
    assert.equal(again.status, 409);
    assert.equal((await t.call('POST', '/v1/devices/stolen/revoke', { json: {} })).status, 400);
  });
});
