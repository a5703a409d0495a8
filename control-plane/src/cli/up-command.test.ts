/**
 * `fleet up` as a user runs it: the real bin in a child process on free
 * ports and a fresh data dir. The first start prints an admin token once; a
 * restart on the same data dir keeps the database (the token still works)
 * and prints none; SIGTERM stops it with exit code 0.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/fleet.js', import.meta.url));
let dataDir: string;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'fleet-up-'));
});
after(() => rm(dataDir, { recursive: true, force: true }));

interface Started {
  child: ChildProcess;
  url: string;
  token: string | null;
  output: () => string;
}

function startUp(): Promise<Started> {
  const child = spawn(
    process.execPath,
    [BIN, 'up', '--port', '0', '--mqtt-port', '0', '--data-dir', dataDir, '--log-level', 'warn'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '', MQTT_URL: '' } },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fleet up did not start within 30 s:\n${stderr}`));
    }, 30_000);
    child.once('exit', (code) => reject(new Error(`fleet up exited ${code}:\n${stderr}`)));
    child.stderr.on('data', () => {
      const listening = /control plane on (http:\/\/\S+),/.exec(stderr);
      if (!listening) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      const token = /^\s+(fleet_[A-Za-z0-9_-]{43})$/m.exec(stderr)?.[1] ?? null;
      resolve({ child, url: listening[1]!, token, output: () => stderr });
    });
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

describe('fleet up', () => {
  it('prints the first admin token once, keeps its data across restarts, stops on SIGTERM', async () => {
    const first = await startUp();
    assert.ok(first.token, `no admin token in:\n${first.output()}`);
    const health = await fetch(`${first.url}/healthz`);
    assert.deepEqual(await health.json(), {
      status: 'ok',
      checks: { database: 'ok', broker: 'ok' },
    });
    const tokens = await fetch(`${first.url}/v1/tokens`, {
      headers: { authorization: `Bearer ${first.token}` },
    });
    assert.equal(tokens.status, 200);
    assert.equal(await stop(first.child), 0);

    const second = await startUp();
    assert.equal(second.token, null, 'a second admin token was printed');
    const again = await fetch(`${second.url}/v1/tokens`, {
      headers: { authorization: `Bearer ${first.token}` },
    });
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as { tokens: unknown[] }).tokens.length, 1);
    assert.equal(await stop(second.child), 0);
  });

  it('refuses a database pool size that is not a whole number of connections, and starts nothing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'fleet-up-refused-'));
    try {
      const child = spawn(
        process.execPath,
        [
          BIN,
          'up',
          '--database-pool-size',
          '0',
          '--port',
          '0',
          '--mqtt-port',
          '0',
          '--data-dir',
          empty,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.notEqual(code, 0);
      assert.match(stderr, /--database-pool-size.*a whole number, at least 1/);
      assert.deepEqual(await readdir(empty), [], 'it wrote into the data dir');
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
