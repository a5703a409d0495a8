/**
 * `fleet eval-sets` and `fleet models policy|approve` in-process against a
 * listening control plane (in-memory database), through real HTTP.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { runCli } from '@fleet/bundles';
import { NOW_MS } from '@fleet/protocol/testing';
import { mergeConfig } from '../config.ts';
import { createControlPlane, type ControlPlane } from '../control-plane.ts';
import { tinyEvalData } from '../__fixtures__/fl-candidate-fixture.ts';
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
  dir = await mkdtemp(join(tmpdir(), 'fleet-cli-gov-'));
  env = { url: cp.url!, token: cp.firstAdminToken!, configPath: join(dir, 'cli.json') };
});
after(async () => {
  await cp.close();
  await rm(dir, { recursive: true, force: true });
});

async function fleet(argv: string[]) {
  let stdout = '';
  const io = { stdout: (t: string) => void (stdout += t), stderr: () => {}, nowMs: () => NOW_MS };
  const code = await runCli(argv, io, registryCommands(io, env));
  const json = stdout.trim().startsWith('{') ? (JSON.parse(stdout) as Record<string, unknown>) : {};
  return { code, json };
}

describe('fleet governance commands', () => {
  it('eval-sets push and ls; a bad file is refused', async () => {
    const good = join(dir, 'holdout.fleval');
    await writeFile(good, tinyEvalData(12).bytes);
    const pushed = await fleet(['eval-sets', 'push', 'holdout', good]);
    assert.equal(pushed.code, 0);
    assert.equal(pushed.json['sampleCount'], 12);
    const bad = join(dir, 'bad.fleval');
    await writeFile(bad, 'not an eval set');
    assert.equal((await fleet(['eval-sets', 'push', 'bad', bad])).code, 1);
    const listed = await fleet(['eval-sets', 'ls']);
    assert.deepEqual(
      (listed.json['evalSets'] as Array<{ name: string }>).map((s) => s.name),
      ['holdout'],
    );
  });

  it('models policy shows the defaults, then sets the flags given', async () => {
    const shown = await fleet(['models', 'policy', 'mnist-2nn']);
    assert.deepEqual([shown.json['riskTier'], shown.json['explicit']], ['high', false]);
    const set = await fleet([
      'models',
      'policy',
      'mnist-2nn',
      '--risk',
      'low',
      '--auto-promote',
      '--margin',
      '1%',
    ]);
    assert.equal(set.code, 0);
    assert.deepEqual(
      [set.json['riskTier'], set.json['autoPromote'], set.json['promotionMargin']],
      ['low', true, 0.01],
    );
    assert.equal((await fleet(['models', 'policy', 'mnist-2nn', '--margin', '200%'])).code, 1);
  });

  it('models policy sets and turns off the round triggers; bad values change nothing', async () => {
    const policy = ['models', 'policy', 'mnist-2nn'];
    const set = await fleet([
      ...policy,
      '--fl-on-drift-eval-set',
      'holdout',
      '--fl-on-drift-config',
      '{"epochs":2}',
      '--fl-on-drift-cooldown',
      '30m',
      '--fl-every',
      '1d',
      '--fl-schedule-eval-set',
      'holdout',
      '--fl-schedule-target',
      'tag:site=berlin',
    ]);
    assert.equal(set.code, 0);
    assert.deepEqual(set.json['flOnDrift'], {
      evalSet: 'holdout',
      config: { epochs: 2 },
      cooldownMs: 1_800_000,
    });
    assert.deepEqual(set.json['flSchedule'], {
      everyMs: 86_400_000,
      evalSet: 'holdout',
      target: { tags: { site: 'berlin' } },
      config: {},
    });
    const refused = [
      ['--fl-on-drift-eval-set', 'holdout', '--fl-on-drift-config', '{"epochs":0}'],
      ['--fl-on-drift-eval-set', 'holdout', '--fl-on-drift-config', 'epochs=2'],
      ['--fl-on-drift-config', '{"epochs":2}'],
      ['--no-fl-on-drift', '--fl-on-drift-eval-set', 'holdout'],
      ['--fl-every', '1d', '--fl-schedule-eval-set', 'holdout'],
      ['--fl-every', '10s', '--fl-schedule-eval-set', 'holdout', '--fl-schedule-target', 'all'],
      ['--fl-on-drift-eval-set', 'holdout', '--fl-on-drift-cooldown', 'soon'],
    ];
    for (const flags of refused)
      assert.equal((await fleet([...policy, ...flags])).code, 1, String(flags));
    const shown = await fleet(policy);
    assert.deepEqual(
      [shown.json['flOnDrift'], shown.json['flSchedule']],
      [set.json['flOnDrift'], set.json['flSchedule']],
    );
    const off = await fleet([...policy, '--no-fl-on-drift', '--no-fl-schedule']);
    assert.deepEqual([off.json['flOnDrift'], off.json['flSchedule']], [null, null]);
    assert.equal(off.json['riskTier'], 'low');
  });

  it('models approve refuses a malformed ref and an unknown version', async () => {
    assert.equal((await fleet(['models', 'approve', 'mnist-2nn'])).code, 1);
    const unknown = await fleet(['models', 'approve', 'mnist-2nn@1.3.0']);
    assert.equal(unknown.code, 1);
  });
});
