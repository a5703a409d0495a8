import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

it('the demo runs end to end (trust, then the control plane) with every outcome as expected', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-demo-'));
  try {
    const script = fileURLToPath(new URL('./trust-demo.ts', import.meta.url));
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, '--dir', dir], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^22 of 22 outcomes as expected/m);
    assert.doesNotMatch(r.stdout, /FAIL/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
