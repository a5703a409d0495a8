/**
 * `fleet fl start|status|ls|cancel|approve` against a listening control
 * plane (in-memory database, fake candidate pipeline, real HTTP): start
 * sends the flags as the round's settings, status shows counts, answers and
 * the decision, `--watch` redraws until the round ends, approve promotes,
 * and bad input exits 1 with the API's message.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { serve, type ServerType } from '@hono/node-server';
import { runCli } from '@fleet/bundles';
import {
  startFlFleet,
  tensorsOf,
  updateMessages,
  type FlDevice,
  type FlFleet,
} from '../__fixtures__/fl-fleet.ts';
import type { CliEnv } from './api-client.ts';
import { flCommand } from './fl-commands.ts';

let f: FlFleet;
let server: ServerType;
let url: string;
const devices: FlDevice[] = [];

before(async () => {
  f = await startFlFleet();
  for (let i = 0; i < 2; i++)
    devices.push(await f.device(`cli-fl-${i}`, { tags: { site: 'lab' } }));
  url = await new Promise<string>((resolve) => {
    server = serve({ fetch: f.cp.app.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
      resolve(`http://127.0.0.1:${info.port}`),
    );
  });
});
after(async () => {
  server.close();
  await f.close();
});

async function fleet(argv: string[], token: string, sleep?: (ms: number) => Promise<unknown>) {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: (text: string) => void (stdout += text),
    stderr: (text: string) => void (stderr += text),
    nowMs: () => f.clock.nowMs,
  };
  const env: CliEnv = { url, token, configPath: '/nonexistent/fleet-cli.json' };
  const code = await runCli(argv, io, [flCommand(io, env, sleep)]);
  return { code, stdout, stderr };
}

const START = [
  'fl',
  'start',
  '--model',
  'mnist-2nn@1.2.0',
  '--target',
  'tag:site=lab',
  '--fraction',
  '1',
  '--min-clients',
  '2',
  '--epochs',
  '2',
  '--batch-size',
  '16',
  '--lr',
  '0.05',
  '--clip',
  '1',
  '--strategy',
  'trimmed-mean',
  '--beta',
  '0.2',
  '--deadline',
  '10m',
  '--eval-set',
  'holdout',
  '--encoding',
  'float32',
  '--rollout-waves',
  '10%,all',
  '--json',
];

async function answerAll(roundId: string) {
  for (const d of devices) {
    const m = updateMessages({
      deviceId: d.id,
      roundId,
      model: f.model,
      tensors: tensorsOf(() => 0.001),
    });
    await f.deliver(d, m.header);
    for (const p of m.parts) await f.deliver(d, p);
  }
}

describe('fleet fl', () => {
  it('start sends the flags as settings; status --watch redraws until the round ends; ls lists it', async () => {
    const started = await fleet(START, f.tokens.operator);
    assert.equal(started.code, 0, started.stderr);
    const round = JSON.parse(started.stdout) as {
      id: string;
      config: Record<string, unknown>;
      rollout: unknown;
    };
    assert.deepEqual(
      [
        round.config['epochs'],
        round.config['batchSize'],
        round.config['learningRate'],
        round.config['deadlineMs'],
      ],
      [2, 16, 0.05, 600_000],
    );
    assert.deepEqual(round.config['strategy'], { kind: 'trimmed-mean', beta: 0.2 });
    assert.deepEqual(round.rollout, { waves: '10%,all' });
    let sleeps = 0;
    const watched = await fleet(
      ['fl', 'status', round.id, '--watch', '--interval', '1'],
      f.tokens.viewer,
      async () => {
        sleeps++;
        await answerAll(round.id);
      },
    );
    assert.equal(watched.code, 0, watched.stderr);
    assert.equal(sleeps, 1);
    assert.match(watched.stdout, /COLLECTING/);
    assert.match(watched.stdout, /PROMOTED/);
    assert.match(watched.stdout, /trimmed-mean beta 0\.2/);
    assert.match(watched.stdout, /selected 2 of 2 eligible {2}accepted 2/);
    assert.match(
      watched.stdout,
      /evaluation: candidate 93\.00 % vs champion 90\.00 % {2}decision promote/,
    );
    assert.match(watched.stdout, /candidate mnist-2nn@1\.3\.0 \(release 6\)/);
    const ls = await fleet(['fl', 'ls'], f.tokens.viewer);
    assert.match(
      ls.stdout.split('\n')[1]!,
      new RegExp(`^${round.id} +mnist-2nn@1\\.2\\.0 +promoted +2/2`),
    );
  });

  it('approve promotes a round awaiting approval; cancel ends one; bad input exits 1 with the reason', async () => {
    f.fake.state.policy = { riskTier: 'high', autoPromote: true };
    const { stdout } = await fleet(START, f.tokens.operator);
    const id = (JSON.parse(stdout) as { id: string }).id;
    await answerAll(id);
    const refused = await fleet(['fl', 'approve', id], f.tokens.operator);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /approver/);
    const approved = await fleet(['fl', 'approve', id], f.tokens.approver);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /PROMOTED/);

    const second = await fleet(START, f.tokens.operator);
    const id2 = (JSON.parse(second.stdout) as { id: string }).id;
    const cancelled = await fleet(['fl', 'cancel', id2, '--reason', 'testing'], f.tokens.operator);
    assert.match(cancelled.stdout, /CANCELLED/);

    const bad = await fleet(
      [...START.slice(0, -1).map((a) => (a === '0.2' ? '0.7' : a))],
      f.tokens.operator,
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /config\.strategy\.beta/);
    const nan = await fleet(
      ['fl', 'start', '--model', 'mnist-2nn', '--target', 'all', '--eval-set', 'h', '--lr', 'fast'],
      f.tokens.operator,
    );
    assert.equal(nan.code, 1);
    assert.match(nan.stderr, /--lr: 'fast' is not a number/);
  });
});
