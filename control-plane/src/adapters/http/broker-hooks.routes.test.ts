/**
 * The external-broker hooks through `app.request()`: a device's signed
 * credential admits it and nothing else does (THREATS 27, 29); topic access
 * follows the protocol's rules in EMQX and go-auth forms (THREATS 28, 30).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deviceTopic, fromUtf8, signMqttCredential, type Signer } from '@fleet/protocol';
import { startTestControlPlane, type TestControlPlane } from '../../__fixtures__/control-plane.ts';

let t: TestControlPlane;
let dev: { id: string; signer: Signer };
before(async () => {
  t = await startTestControlPlane();
  dev = await t.enrolDevice({ id: 'hook-dev' });
});
after(() => t.close());

const credential = (signer: Signer, deviceId: string, clientId = deviceId, nowMs = t.clock.nowMs) =>
  fromUtf8(signMqttCredential({ deviceId, clientId, nowMs, signer }));

async function login(body: object, style = 'emqx') {
  const res = await t.call('POST', `/v1/broker/authenticate?style=${style}`, {
    json: body,
    token: t.tokens.viewer,
  });
  return { status: res.status, result: ((await res.json()) as { result: string }).result };
}
async function acl(body: object, style = 'emqx') {
  const res = await t.call('POST', `/v1/broker/acl?style=${style}`, {
    json: body,
    token: t.tokens.viewer,
  });
  return { status: res.status, result: ((await res.json()) as { result: string }).result };
}

describe('broker login hook', () => {
  it('allows a device with its own fresh credential', async () => {
    const password = credential(dev.signer, dev.id);
    assert.deepEqual(await login({ username: dev.id, clientid: dev.id, password }), {
      status: 200,
      result: 'allow',
    });
    assert.deepEqual(await login({ username: dev.id, clientid: dev.id, password }, 'go-auth'), {
      status: 200,
      result: 'allow',
    });
  });

  it('denies anonymous, another client id, a foreign key, a stale credential, revoked devices', async () => {
    const other = await t.enrolDevice({ id: 'hook-other' });
    const cases = [
      { username: '', clientid: dev.id, password: '' },
      {
        username: dev.id,
        clientid: 'hook-other',
        password: credential(dev.signer, dev.id, 'hook-other'),
      },
      { username: dev.id, clientid: dev.id, password: credential(other.signer, dev.id) },
      {
        username: dev.id,
        clientid: dev.id,
        password: credential(dev.signer, dev.id, dev.id, t.clock.nowMs - 60 * 60_000),
      },
      { username: 'nobody', clientid: 'nobody', password: credential(dev.signer, 'nobody') },
      { username: dev.id, clientid: dev.id, password: '{"not":"an envelope"}' },
    ];
    for (const body of cases) {
      assert.deepEqual(
        await login(body),
        { status: 200, result: 'deny' },
        JSON.stringify(body).slice(0, 80),
      );
      assert.equal((await login(body, 'go-auth')).status, 403);
    }
    await t.call('POST', '/v1/devices/hook-other/revoke', { json: { reason: 'test' } });
    const revoked = {
      username: other.id,
      clientid: other.id,
      password: credential(other.signer, other.id),
    };
    assert.equal((await login(revoked)).result, 'deny');
  });

  it('refuses a malformed hook body with 400 and an anonymous caller with 401', async () => {
    const res = await t.call('POST', '/v1/broker/authenticate', {
      json: { username: 1 },
      token: t.tokens.viewer,
    });
    assert.equal(res.status, 400);
    const anon = await t.call('POST', '/v1/broker/authenticate', {
      json: { clientid: 'x' },
      token: null,
    });
    assert.equal(anon.status, 401);
  });
});

describe('broker ACL hook', () => {
  const own = (channel: Parameters<typeof deviceTopic>[1]) => deviceTopic('hook-dev', channel);

  it('EMQX form: own topics only, retain only on state, commands never', async () => {
    const allow = { status: 200, result: 'allow' };
    const deny = { status: 200, result: 'deny' };
    assert.deepEqual(
      await acl({ username: 'hook-dev', topic: own('telemetry'), action: 'publish' }),
      allow,
    );
    assert.deepEqual(
      await acl({ username: 'hook-dev', topic: own('state'), action: 'publish', retain: true }),
      allow,
    );
    assert.deepEqual(
      await acl({ username: 'hook-dev', topic: own('evt'), action: 'publish', retain: true }),
      deny,
    );
    assert.deepEqual(
      await acl({ username: 'hook-dev', topic: own('cmd'), action: 'publish' }),
      deny,
    );
    assert.deepEqual(
      await acl({
        username: 'hook-dev',
        topic: deviceTopic('hook-other', 'state'),
        action: 'publish',
      }),
      deny,
    );
    assert.deepEqual(
      await acl({ username: 'hook-dev', topic: own('cmd'), action: 'subscribe' }),
      allow,
    );
    assert.deepEqual(
      await acl({ username: 'hook-dev', topic: 'fleet/v1/#', action: 'subscribe' }),
      deny,
    );
    assert.deepEqual(
      await acl({ username: 'hook-dev', topic: '$SYS/#', action: 'subscribe' }),
      deny,
    );
  });

  it('go-auth form: acc codes, client id bound to the username', async () => {
    assert.equal(
      (
        await acl(
          { username: 'hook-dev', clientid: 'hook-dev', topic: own('cmd'), acc: 1 },
          'go-auth',
        )
      ).status,
      200,
    );
    assert.equal(
      (
        await acl(
          { username: 'hook-dev', clientid: 'hook-dev', topic: own('cmd'), acc: 2 },
          'go-auth',
        )
      ).status,
      403,
    );
    assert.equal(
      (
        await acl(
          { username: 'hook-dev', clientid: 'hook-dev', topic: own('evt'), acc: 2 },
          'go-auth',
        )
      ).status,
      200,
    );
    assert.equal(
      (await acl({ username: 'hook-dev', clientid: 'thief', topic: own('evt'), acc: 2 }, 'go-auth'))
        .status,
      403,
    );
    assert.equal(
      (await acl({ username: 'hook-dev', topic: own('evt'), acc: 9 }, 'go-auth')).status,
      403,
    );
    const su = await t.call('POST', '/v1/broker/superuser?style=go-auth', {
      token: t.tokens.viewer,
    });
    assert.equal(su.status, 403);
  });
});
