import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  fromBase64,
  generateKeyPair,
  isFleetError,
  keyIdOf,
  sign,
  toBase64,
  verify,
} from '@fleet/protocol';
import { createIdentityStore } from './identity-store.ts';

const root = await mkdtemp(join(tmpdir(), 'fleet-identity-'));
after(() => rm(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, String(dirs++));
const init = { deviceId: 'dev-a', hardware: 'sim-cpu', tags: { site: 'x' } };

describe('identity store (filesystem)', () => {
  it('creates a key once, keeps it private, and loads the same key after a restart', async () => {
    const dir = freshDir();
    await mkdir(dir, { recursive: true });
    const first = await createIdentityStore(dir).loadOrCreate(init);
    const again = await createIdentityStore(dir).loadOrCreate(init);
    assert.deepEqual(again.publicKey, first.publicKey);
    assert.equal(again.signer.keyId, await keyIdOf(first.publicKey));
    assert.equal((await stat(join(dir, 'identity.json'))).mode & 0o777, 0o600);
  });

  it('signs with node:crypto, the same bytes tweetnacl gives, verifiable by the public key', async () => {
    const dir = freshDir();
    await mkdir(dir, { recursive: true });
    const identity = await createIdentityStore(dir).loadOrCreate(init);
    const message = new Uint8Array([9, 8, 7]);
    assert.ok(identity.signer.sign, 'a native signing function');
    const signature = identity.signer.sign(message);
    assert.deepEqual(signature, sign(message, identity.signer.secretKey));
    assert.equal(await verify(identity.publicKey, message, signature), true);
  });

  it('refuses an identity file for another device id', async () => {
    const dir = freshDir();
    await mkdir(dir, { recursive: true });
    await createIdentityStore(dir).loadOrCreate(init);
    await assert.rejects(
      createIdentityStore(dir).loadOrCreate({ ...init, deviceId: 'dev-b' }),
      (e) => isFleetError(e, 'AGENT_CONFIG'),
    );
  });

  for (const [name, damage] of [
    ['cut short', (text: string) => text.slice(0, text.length / 2)],
    [
      'not matching the schema',
      (text: string) => text.replace('"schemaVersion":1', '"schemaVersion":2'),
    ],
    [
      'holding a secret key whose public half is another key',
      (text: string) => {
        const stored = JSON.parse(text) as { secretKey: string };
        const secret = fromBase64(stored.secretKey);
        secret.set(generateKeyPair().publicKey, 32);
        return JSON.stringify({ ...stored, secretKey: toBase64(secret) });
      },
    ],
  ] as const) {
    it(`reports a file ${name} as AGENT_STATE_CORRUPT and leaves it as it was`, async () => {
      const dir = freshDir();
      await mkdir(dir, { recursive: true });
      await createIdentityStore(dir).loadOrCreate(init);
      const path = join(dir, 'identity.json');
      const damaged = damage(await readFile(path, 'utf8'));
      await writeFile(path, damaged);
      await assert.rejects(createIdentityStore(dir).loadOrCreate(init), (e) =>
        isFleetError(e, 'AGENT_STATE_CORRUPT'),
      );
      assert.equal(
        await readFile(path, 'utf8'),
        damaged,
        'the damaged file is kept for inspection',
      );
    });
  }
});
