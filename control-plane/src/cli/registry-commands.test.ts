/**
 * The operator commands end to end: `fleet` in-process against a control
 * plane listening on a free port (in-memory database), through real HTTP.
 * Exit codes: 0 success, 1 refused (the API's code printed as JSON), 2 usage.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { pino } from 'pino';
import { runCli } from '@fleet/bundles';
import { generateKeyPair, keyIdOf, signEnrolmentRequest } from '@fleet/protocol';
import { NOW_MS, packSample, testTrust } from '@fleet/protocol/testing';
import { mergeConfig } from '../config.ts';
import { createControlPlane, type ControlPlane } from '../control-plane.ts';
import { registryCommands } from './registry-commands.ts';
import type { CliEnv } from './api-client.ts';

let cp: ControlPlane;
let dir: string;
let env: CliEnv;

before(async () => {
  cp = await createControlPlane({
    config: mergeConfig({ httpPort: 0 }),
    nowMs: () => NOW_MS,
    logger: pino({ level: 'silent' }),
    inMemory: true,
    listen: true,
  });
  dir = await mkdtemp(join(tmpdir(), 'fleet-cli-cp-'));
  env = { url: cp.url!, token: cp.firstAdminToken!, configPath: join(dir, 'cli.json') };
});
after(async () => {
  await cp.close();
  await rm(dir, { recursive: true, force: true });
});

async function fleet(argv: string[], cliEnv: CliEnv = env) {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: (t: string) => void (stdout += t),
    stderr: (t: string) => void (stderr += t),
    nowMs: () => NOW_MS,
  };
  const code = await runCli(argv, io, registryCommands(io, cliEnv));
  const json = stdout.trim().startsWith('{') ? (JSON.parse(stdout) as Record<string, unknown>) : {};
  return { code, stdout, stderr, json };
}

describe('fleet operator commands', () => {
  it('trust push, models push/ls/show/lineage', async () => {
    const trust = await testTrust();
    const rootPath = join(dir, 'root.json');
    await writeFile(rootPath, trust.rootBytes);
    assert.equal((await fleet(['trust', 'push', rootPath])).json.version, 1);
    const bundlePath = join(dir, 'm.fleet');
    await writeFile(
      bundlePath,
      await packSample(trust.bundleKeys.slice(0, 2), { version: '1.0.0', release: 1 }),
    );
    const pushed = await fleet(['models', 'push', bundlePath]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(pushed.json.release, 1);
    const again = await fleet(['models', 'push', bundlePath]);
    assert.equal(again.code, 1);
    assert.equal(again.json.code, 'CONFLICT');
    assert.equal(((await fleet(['models', 'ls'])).json.models as unknown[]).length, 1);
    assert.equal((await fleet(['models', 'show', 'mnist-2nn@1'])).json.version, '1.0.0');
    assert.equal(
      ((await fleet(['models', 'lineage', 'mnist-2nn@1'])).json.lineage as unknown[]).length,
      1,
    );
    assert.equal((await fleet(['models', 'show', 'mnist-2nn'])).json.code, 'INVALID_REQUEST');
  });

  it('enroll-token create, then devices ls/tag/revoke', async () => {
    const created = await fleet(['enroll-token', 'create', '--tag', 'site=oslo', '--ttl', '600']);
    assert.equal(created.code, 0, created.stderr);
    const pair = generateKeyPair();
    const request = signEnrolmentRequest({
      token: created.json.token as string,
      deviceId: 'cli-dev',
      publicKey: pair.publicKey,
      hardware: 'rpi4',
      tags: {},
      agentVersion: '0.1.0',
      nowMs: NOW_MS,
      signer: { keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey },
    });
    const enrolled = await fetch(`${cp.url}/v1/enrol`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: request,
    });
    assert.equal(enrolled.status, 201);
    const table = await fleet(['devices', 'ls', '--tag', 'site=oslo']);
    assert.match(table.stdout, /^cli-dev\s+offline\s+rpi4\s+-\s+site=oslo$/m);
    const tagged = await fleet([
      'devices',
      'tag',
      'cli-dev',
      '--set',
      'line=2',
      '--remove',
      'site',
    ]);
    assert.deepEqual(tagged.json.tags, { line: '2' });
    assert.equal(
      (await fleet(['devices', 'tag', 'cli-dev', '--set', 'oops'])).json.code,
      'INVALID_REQUEST',
    );
    assert.equal(
      (await fleet(['devices', 'revoke', 'cli-dev', '--reason', 'lost'])).json.status,
      'revoked',
    );
    assert.equal((await fleet(['devices', 'revoke', 'cli-dev'])).code, 2);
  });

  it('tokens create: the role is enforced by the API for the new token', async () => {
    const viewer = await fleet(['tokens', 'create', '--role', 'viewer', '--name', 'dash']);
    assert.equal(viewer.code, 0);
    const asViewer = { ...env, token: viewer.json.secret as string };
    const refused = await fleet(['tokens', 'create', '--role', 'admin', '--name', 'x'], asViewer);
    assert.equal(refused.code, 1);
    assert.equal(refused.json.code, 'FORBIDDEN');
    assert.equal((await fleet(['devices', 'ls', '--json'], asViewer)).code, 0);
    assert.equal((await fleet(['tokens', 'create', '--role', 'root', '--name', 'x'])).code, 2);
  });

  it('login saves URL and token (0600) for later commands', async () => {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, `${cp.firstAdminToken!}\n`);
    const login = await fleet(['login', '--url', cp.url!, '--token-file', tokenFile], {
      configPath: env.configPath,
    });
    assert.equal(login.code, 0, login.stderr);
    assert.equal((await stat(env.configPath)).mode & 0o777, 0o600);
    assert.equal((await fleet(['tokens', 'ls'], { configPath: env.configPath })).code, 0);
  });

  it('audit verify passes, then fails naming an edited row', async () => {
    const ok = await fleet(['audit', 'verify']);
    assert.equal(ok.code, 0);
    assert.equal(ok.json.ok, true);
    await cp.database.db.execute(sql`update audit_log set after = '{"forged":true}' where seq = 3`);
    const broken = await fleet(['audit', 'verify']);
    assert.equal(broken.code, 1);
    assert.equal(broken.json.code, 'AUDIT_BROKEN');
    assert.match(broken.json.message as string, /row 3: edited/);
  });

  it('reports an unreachable control plane', async () => {
    const r = await fleet(['devices', 'ls', '--url', 'http://127.0.0.1:9']);
    assert.equal(r.code, 1);
    assert.equal(r.json.code, 'UNREACHABLE');
  });
});
