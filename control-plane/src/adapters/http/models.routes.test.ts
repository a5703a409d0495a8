/**
 * Model registry and trust-root routes through `app.request()`: uploads are
 * verified against the installed root before anything is stored; releases
 * only move forward; lineage walks parents; the root rotates only through a
 * valid chain.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bundleIdOf, signRoot, toBase64 } from '@fleet/protocol';
import {
  packSample,
  rootMetadata,
  testKeys,
  testTrust,
  type TestTrust,
} from '@fleet/protocol/testing';
import { startTestControlPlane, type TestControlPlane } from '../../__fixtures__/control-plane.ts';

let t: TestControlPlane;
let trust: TestTrust;
before(async () => {
  t = await startTestControlPlane();
  trust = await testTrust();
});
after(() => t.close());

const body = async (res: Response) => (await res.json()) as Record<string, unknown>;
const errorOf = async (res: Response) =>
  (await body(res)).error as { code: string; message: string };
const upload = (bytes: Uint8Array, token = t.tokens.operator) =>
  t.call('POST', '/v1/models', { body: bytes, token });
const putRoot = (bytes: Uint8Array, token = t.tokens.admin) =>
  t.call('PUT', '/v1/trust/root', { body: bytes, token });

async function assertNothingStored(res: Response, status: number, code: string) {
  const auditBefore = (await t.cp.audit.list()).length;
  assert.equal(res.status, status);
  assert.equal((await errorOf(res)).code, code);
  assert.equal((await t.cp.audit.list()).length, auditBefore);
}

describe('model registry', () => {
  it('refuses uploads before a trust root is installed', async () => {
    const res = await upload(await packSample(trust.bundleKeys.slice(0, 2)));
    await assertNothingStored(res, 409, 'NO_TRUST_ROOT');
    assert.equal((await t.call('GET', '/v1/trust/root', { token: null })).status, 409);
  });

  it('installs the first root (admin only)', async () => {
    assert.equal((await putRoot(trust.rootBytes, t.tokens.approver)).status, 403);
    const res = await putRoot(trust.rootBytes);
    assert.equal(res.status, 201);
    assert.equal((await body(res)).version, 1);
    const read = await t.call('GET', '/v1/trust/root', { token: null });
    assert.equal((await body(read)).version, 1);
    // A device enrolling now is handed this root to pin.
    const enrolled = await body((await t.enrolDevice({ id: 'pins-root' })).response);
    assert.deepEqual(enrolled.trustRoot, { version: 1, envelope: toBase64(trust.rootBytes) });
  });

  it('registers a verified bundle and serves it back byte for byte', async () => {
    const bundle = await packSample(trust.bundleKeys.slice(0, 2), { version: '1.0.0', release: 1 });
    const res = await upload(bundle);
    assert.equal(res.status, 201, JSON.stringify(await body(res.clone())));
    const version = await body(res);
    assert.equal(version.name, 'mnist-2nn');
    assert.equal((version.signedBy as string[]).length, 2);
    const download = await t.call('GET', '/v1/models/mnist-2nn/versions/1/bundle', {
      token: t.tokens.viewer,
    });
    assert.equal(download.status, 200);
    assert.deepEqual(new Uint8Array(await download.arrayBuffer()), bundle);
    const entry = (await t.cp.audit.list()).at(-1)!;
    assert.equal(entry.action, 'model.uploaded');
  });

  it('refuses tampered, under-signed, replayed and oversize bundles, storing nothing', async () => {
    const good = await packSample(trust.bundleKeys.slice(0, 2), { version: '1.1.0', release: 2 });
    const tampered = good.slice();
    tampered[tampered.length - 10]! ^= 0xff;
    await assertNothingStored(await upload(tampered), 422, 'PART_HASH');
    const oneKey = await packSample(trust.bundleKeys.slice(0, 1), { version: '1.1.0', release: 2 });
    await assertNothingStored(await upload(oneKey), 422, 'SIGNATURE_THRESHOLD');
    const rootSigned = await packSample(trust.rootKeys.slice(0, 2), {
      version: '1.1.0',
      release: 2,
    });
    await assertNothingStored(await upload(rootSigned), 422, 'SIGNATURE_THRESHOLD');
    const again = await packSample(trust.bundleKeys.slice(0, 2), { version: '1.0.1', release: 1 });
    await assertNothingStored(await upload(again), 409, 'CONFLICT');
    // Refused before any byte is written: no blob for any refused bundle.
    for (const refused of [tampered, oneKey, rootSigned, again]) {
      assert.equal(await t.cp.blobs.has(await bundleIdOf(refused)), false);
    }
    assert.equal(await t.cp.blobs.has(await bundleIdOf(good)), false); // never uploaded
    await assertNothingStored(
      await upload(new Uint8Array(3 * 1024 * 1024)),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    await assertNothingStored(await upload(new Uint8Array([1, 2, 3])), 400, 'TRUNCATED');
    assert.equal(
      (await body(await t.call('GET', '/v1/models/mnist-2nn/versions'))).versions instanceof Array,
      true,
    );
    assert.equal(
      ((await body(await t.call('GET', '/v1/models/mnist-2nn/versions'))).versions as unknown[])
        .length,
      1,
    );
  });

  it('walks lineage through registered parents, and refuses an unknown parent', async () => {
    const keys = trust.bundleKeys.slice(0, 2);
    const child = await packSample(keys, {
      version: '1.1.0',
      release: 2,
      lineage: { producer: { kind: 'manual' }, parent: { version: '1.0.0', release: 1 } },
    });
    assert.equal((await upload(child)).status, 201);
    const grandchild = await packSample(keys, {
      version: '1.2.0',
      release: 3,
      lineage: {
        producer: { kind: 'federated-round', roundId: 'r-1', participants: 20 },
        parent: { version: '1.1.0', release: 2 },
      },
    });
    assert.equal((await upload(grandchild)).status, 201);
    const res = await t.call('GET', '/v1/models/mnist-2nn/versions/3/lineage', {
      token: t.tokens.viewer,
    });
    const steps = (await body(res)).lineage as {
      version: string;
      lineage: { producer: { kind: string } };
    }[];
    assert.deepEqual(
      steps.map((s) => s.version),
      ['1.2.0', '1.1.0', '1.0.0'],
    );
    assert.equal(steps[0]!.lineage.producer.kind, 'federated-round');
    const orphan = await packSample(keys, {
      version: '2.0.0',
      release: 4,
      lineage: { producer: { kind: 'manual' }, parent: { version: '0.9.0', release: 1 } },
    });
    await assertNothingStored(await upload(orphan), 400, 'INVALID_REQUEST');
  });

  it('lists models, versions and one version; 404 for unknown ones', async () => {
    const models = (await body(await t.call('GET', '/v1/models', { token: t.tokens.viewer })))
      .models;
    assert.deepEqual(models, [
      { name: 'mnist-2nn', versions: 3, latestVersion: '1.2.0', latestRelease: 3 },
    ]);
    const versions = (await body(await t.call('GET', '/v1/models/mnist-2nn/versions')))
      .versions as { release: number }[];
    assert.deepEqual(
      versions.map((v) => v.release),
      [3, 2, 1],
    );
    const one = await body(await t.call('GET', '/v1/models/mnist-2nn/versions/2'));
    assert.equal((one.manifest as { version: string }).version, '1.1.0');
    assert.equal((await t.call('GET', '/v1/models/mnist-2nn/versions/9')).status, 404);
    assert.equal((await t.call('GET', '/v1/models/nothing/versions')).status, 404);
    assert.equal((await t.call('GET', '/v1/models/Bad Name/versions')).status, 400);
  });
});

describe('trust root rotation', () => {
  it('rotates only through a root signed by the old and the new root keys', async () => {
    const newRootKeys = await testKeys(20, 3);
    const spec = {
      rootKeys: newRootKeys,
      rootThreshold: 2,
      bundleKeys: trust.bundleKeys,
      bundleThreshold: 2,
    };
    const onlyNew = await signRoot(rootMetadata({ ...spec, version: 2 }), newRootKeys);
    const auditBefore = (await t.cp.audit.list()).length;
    const refused = await putRoot(onlyNew);
    assert.equal(refused.status, 422);
    assert.equal((await errorOf(refused)).code, 'SIGNATURE_THRESHOLD');
    assert.equal((await t.cp.audit.list()).length, auditBefore);
    const skip = await signRoot(rootMetadata({ ...spec, version: 3 }), [
      ...trust.rootKeys,
      ...newRootKeys,
    ]);
    assert.equal((await errorOf(await putRoot(skip))).code, 'ROOT_ROTATION');
    const rotated = await signRoot(rootMetadata({ ...spec, version: 2 }), [
      ...trust.rootKeys.slice(0, 2),
      ...newRootKeys.slice(0, 2),
    ]);
    assert.equal((await putRoot(rotated)).status, 201);
    const chain = await body(await t.call('GET', '/v1/trust/roots?after=1', { token: null }));
    assert.deepEqual(
      (chain.roots as { version: number }[]).map((r) => r.version),
      [2],
    );
    assert.equal((await t.cp.audit.list()).at(-1)!.action, 'trust-root.rotated');
    assert.equal((await putRoot(new Uint8Array([123]))).status, 400);
  });
});
