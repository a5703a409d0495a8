/**
 * `fleet drift status|alerts` against a listening control plane with drift
 * data (in-memory database, real HTTP): the table names every cohort with
 * its latest window, highlights the drifted one and its signals, lists the
 * open alert; `--watch` redraws; bad input exits 1 with the API's code.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { serve, type ServerType } from '@hono/node-server';
import { FleetError } from '@fleet/protocol';
import { runCli } from '@fleet/bundles';
import { startDriftFleet, type DriftFleet } from '../__fixtures__/drift-fleet.ts';
import {
  CLEAN,
  SHIFTED,
  driftMessage,
  sketchTraffic,
} from '../core/drift/__fixtures__/drift-fixtures.ts';
import { driftCommand, formatDriftStatus, type DriftStatusView } from './drift-commands.ts';
import type { CliEnv } from './api-client.ts';

let f: DriftFleet;
let server: ServerType;
let env: CliEnv;

before(async () => {
  f = await startDriftFleet();
  const end = '2026-11-26T12:00:50.000Z';
  for (const [i, cohort] of ['a', 'b', 'b'].entries()) {
    const device = await f.t.enrolDevice({ id: `cli-${i}`, tags: { cohort } });
    await f.send(
      device,
      driftMessage({
        deviceId: device.id,
        seq: 1,
        end,
        sketches: sketchTraffic(600, i, cohort === 'b' ? SHIFTED : CLEAN),
        sampled: 600,
        model: f.model,
      }),
    );
  }
  f.t.clock.nowMs = Date.parse('2026-11-26T12:01:31Z');
  await f.t.cp.drift.tick();
  const url = await new Promise<string>((resolve) => {
    server = serve({ fetch: f.t.cp.app.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
      resolve(`http://127.0.0.1:${info.port}`),
    );
  });
  env = { url, token: f.t.tokens.viewer, configPath: '/nonexistent/fleet-cli.json' };
});
after(async () => {
  server.close();
  await f.t.close();
});

async function fleet(argv: string[], sleep?: (ms: number) => Promise<unknown>) {
  let stdout = '';
  const io = {
    stdout: (text: string) => void (stdout += text),
    stderr: () => undefined,
    nowMs: () => f.t.clock.nowMs,
  };
  const code = await runCli(argv, io, [driftCommand(io, env, sleep)]);
  return { code, stdout };
}

describe('fleet drift', () => {
  it('status shows each cohort against its latest window, the drifted one and its signals marked', async () => {
    const { code, stdout } = await fleet(['drift', 'status', '--model', 'mnist-2nn']);
    assert.equal(code, 0);
    const lines = stdout.split('\n');
    assert.match(lines[0]!, /^drift {2}mnist-2nn@1\.2\.0 \(release 5\) {2}windows of 60 s/);
    assert.match(
      lines[1]!,
      /^COHORT +WINDOW END +VERDICT +SAMPLES +DEVICES +SHARE +HISTORY +DRIFTED SIGNALS$/,
    );
    const b = lines.find((l) => l.startsWith('cohort=b'))!;
    assert.match(
      b,
      /12:01:00 +DRIFTED +1200 +2 +1\.00 +# +\*confidence ks 0\.\d\d {2}\*\S+ (ks|psi) \d\.\d\d/,
    );
    assert.match(
      lines.find((l) => l.startsWith('cohort=a'))!,
      /CLEAN +600 +1 +0\.00 +\. +-$/,
    );
    assert.match(stdout, /ALERT {2}cohort=b drifted since 2026-11-26T12:01:31\.000Z: input\./);
  });

  it('status --cohort shows one cohort; --json the API view', async () => {
    const one = await fleet([
      'drift',
      'status',
      '--model',
      'mnist-2nn@1.2.0',
      '--cohort',
      'cohort=a',
    ]);
    assert.deepEqual(
      one.stdout
        .split('\n')
        .filter((l) => l.startsWith('cohort='))
        .map((l) => l.split(' ')[0]),
      ['cohort=a'],
    );
    const json = JSON.parse(
      (await fleet(['drift', 'status', '--model', 'mnist-2nn', '--json'])).stdout,
    ) as DriftStatusView;
    assert.deepEqual(
      json.cohorts.map((c) => c.cohort),
      ['*', 'cohort=a', 'cohort=b'],
    );
  });

  it('status --watch redraws until interrupted', async () => {
    let naps = 0;
    const { code, stdout } = await fleet(
      ['drift', 'status', '--model', 'mnist-2nn', '--watch', '--interval', '10'],
      (ms) => {
        assert.equal(ms, 10);
        if (++naps === 2)
          return Promise.reject(new FleetError('INTERRUPTED', 'stopped by the test'));
        return Promise.resolve();
      },
    );
    assert.equal(code, 1);
    assert.equal(stdout.split('\x1b[2J\x1b[H').length - 1, 2, 'two screens');
  });

  it('alerts --open lists the open alerts; a bad cohort exits 1 naming the field', async () => {
    const alerts = JSON.parse((await fleet(['drift', 'alerts', '--open'])).stdout) as {
      alerts: Array<{ cohort: string }>;
    };
    assert.ok(alerts.alerts.some((a) => a.cohort === 'cohort=b'));
    const bad = await fleet(['drift', 'status', '--model', 'mnist-2nn', '--cohort', 'b']);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /"code": "INVALID_REQUEST"/);
    assert.match(bad.stdout, /cohort: expected KEY=VALUE/);
  });
});

describe('formatDriftStatus', () => {
  it('colours drifted rows and alerts only when asked, and says when nothing is scored', () => {
    const view: DriftStatusView = {
      model: { name: 'm', version: '1.0.0', release: 1 },
      windowMs: 60_000,
      cohorts: [
        {
          cohort: 'site=x',
          windows: [
            {
              start: '2026-11-26T11:59:00.000Z',
              end: '2026-11-26T12:00:00.000Z',
              devices: 3,
              verdict: 'drifted',
              sampled: 900,
              driftedShare: 0.5,
              signals: [
                {
                  name: 'a',
                  drifted: true,
                  insufficient: false,
                  tripped: ['psi'],
                  distances: { psi: 0.31 },
                },
                {
                  name: 'b',
                  drifted: false,
                  insufficient: false,
                  tripped: [],
                  distances: { psi: 0.01 },
                },
              ],
            },
          ],
          cumulative: null,
          alert: { openedAt: '2026-11-26T12:00:30.000Z', signals: [{ name: 'a' }] },
        },
      ],
    };
    assert.match(formatDriftStatus(view), /site=x .*DRIFTED .*\*a psi 0\.31$/m);
    const ESC = '\u001b[';
    assert.ok(!formatDriftStatus(view).includes(ESC));
    assert.ok(formatDriftStatus(view, { color: true }).includes(`${ESC}1;31msite=x`));
    assert.match(formatDriftStatus({ ...view, cohorts: [] }), /no drift flushes scored yet/);
  });
});
