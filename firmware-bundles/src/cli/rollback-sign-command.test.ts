/**
 * `fleet bundle sign-rollback`: an instruction signed with the key
 * directory's bundle keys, which an agent's check accepts for the devices it
 * names and refuses for others.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { isFleetError, loadTrustedRoot, verifyRollbackAuthorization } from '@fleet/protocol';
import { runCli } from './program.ts';

const NOW_MS = Date.parse('2026-11-27T12:00:00Z');
let dir: string;

async function fleet(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    nowMs: () => NOW_MS,
  });
  return { code, stdout, stderr };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-rollback-'));
  assert.equal((await fleet('keys', 'init', '--dir', join(dir, 'keys'))).code, 0);
});
after(() => rm(dir, { recursive: true, force: true }));

it('signs a rollback instruction that the agent check accepts only within its scope', async () => {
  const out = join(dir, 'rollback.json');
  const toBundle = 'ab'.repeat(32);
  const r = await fleet(
    'bundle',
    'sign-rollback',
    '--keys',
    join(dir, 'keys'),
    '--model',
    'mnist-2nn',
    '--to-release',
    '3',
    '--to-bundle',
    toBundle,
    '--from-release-at-most',
    '5',
    '--devices',
    'pump-1,pump-2',
    '--expires-hours',
    '2',
    '--out',
    out,
  );
  assert.equal(r.code, 0, r.stderr);
  const root = await loadTrustedRoot(
    new Uint8Array(await readFile(join(dir, 'keys', 'root.json'))),
  );
  const envelope = JSON.parse(await readFile(out, 'utf8')) as unknown;
  const check = (deviceId: string, nowMs = NOW_MS) =>
    verifyRollbackAuthorization(envelope, {
      root,
      nowMs,
      deviceId,
      hardwareClass: 'rpi4',
      modelName: 'mnist-2nn',
      installedRelease: 5,
      target: { bundleId: toBundle, release: 3 },
    });
  const instruction = await check('pump-1');
  assert.equal(instruction.toRelease, 3);
  await assert.rejects(check('pump-9'), (e) => isFleetError(e, 'WRONG_DEVICE'));
  await assert.rejects(check('pump-1', NOW_MS + 3 * 3_600_000), (e) => isFleetError(e, 'EXPIRED'));
});

it('refuses a release that is not a number and writes nothing', async () => {
  const out = join(dir, 'bad.json');
  const r = await fleet(
    'bundle',
    'sign-rollback',
    '--keys',
    join(dir, 'keys'),
    '--model',
    'm',
    '--to-release',
    'three',
    '--to-bundle',
    'ab'.repeat(32),
    '--out',
    out,
  );
  assert.equal(r.code, 2);
  await assert.rejects(readFile(out));
});
