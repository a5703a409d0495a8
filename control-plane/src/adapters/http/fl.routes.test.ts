/**
 * Federated round routes through `app.request()`: start (operator), list and
 * show (viewer) with counts, answers and rejections, cancel (operator),
 * approve (approver); roles refused, bad bodies answered 400 naming the
 * field, unknown rounds 404, a finished round 409.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  startFlFleet,
  tensorsOf,
  updateMessages,
  type FlDevice,
  type FlFleet,
} from '../../__fixtures__/fl-fleet.ts';

let f: FlFleet;
const devices: FlDevice[] = [];
before(async () => {
  f = await startFlFleet();
  for (let i = 0; i < 3; i++)
    devices.push(await f.device(`rt-dev-${i}`, { tags: { site: 'lab' } }));
});
after(() => f.close());

const body = (over: Record<string, unknown> = {}) => ({
  model: 'mnist-2nn@1.2.0',
  target: 'tag:site=lab',
  evalSet: 'mnist-holdout',
  config: {
    fraction: 1,
    minClients: 2,
    clipNorm: 1,
    encoding: 'float32',
    strategy: { kind: 'median' },
  },
  deadline: '10m',
  rollout: { waves: '10%,all', bake: '5m' },
  ...over,
});

interface View {
  id: string;
  status: string;
  counts: Record<string, number>;
  rejections: Record<string, number>;
  answers?: Array<{ deviceId: string; outcome: string; norm: number | null }>;
  selected?: string[];
  candidate: { version: string | null } | null;
  config: { deadlineMs: number };
  error?: { code: string; message: string };
}

async function start(over: Record<string, unknown> = {}, token = f.tokens.operator) {
  const res = await f.call('POST', '/v1/fl/rounds', { json: body(over), token });
  return { status: res.status, view: (await res.json()) as View };
}

describe('fl routes', () => {
  it('starts a round (operator) and shows it (viewer) with counts, answers and rejections', async () => {
    const { status, view } = await start();
    assert.equal(status, 201, JSON.stringify(view));
    assert.equal(view.status, 'collecting');
    assert.equal(view.counts['selected'], 3);
    assert.equal(view.config.deadlineMs, 600_000);
    const send = async (
      d: FlDevice,
      tensors = tensorsOf((t, i) => (t === 1 && i === 0 ? 0.2 : 0)),
    ) => {
      const m = updateMessages({ deviceId: d.id, roundId: view.id, model: f.model, tensors });
      await f.deliver(d, m.header);
      for (const p of m.parts) await f.deliver(d, p);
    };
    await send(devices[0]!);
    await send(
      devices[1]!,
      tensorsOf((t, i) => (t === 1 && i === 0 ? 9 : 0)),
    ); // over-clip
    const shown = (await (
      await f.call('GET', `/v1/fl/rounds/${view.id}`, { token: f.tokens.viewer })
    ).json()) as View;
    assert.equal(shown.counts['accepted'], 1);
    assert.equal(shown.counts['rejected'], 1);
    assert.equal(shown.rejections['over-clip'], 1);
    assert.deepEqual(
      shown.answers!.map((a) => a.outcome),
      ['accepted', 'rejected'],
    );
    await send(devices[2]!);
    const done = (await (
      await f.call('GET', `/v1/fl/rounds/${view.id}`, { token: f.tokens.viewer })
    ).json()) as View;
    assert.equal(done.status, 'promoted');
    assert.equal(done.candidate?.version, '1.3.0');
    const list = (await (
      await f.call('GET', '/v1/fl/rounds?limit=5', { token: f.tokens.viewer })
    ).json()) as { rounds: View[] };
    assert.equal(list.rounds[0]!.id, view.id);
    assert.equal(list.rounds[0]!.answers, undefined);
  });

  it('cancels (operator) and approves (approver), refusing lower roles and finished rounds', async () => {
    const { view } = await start();
    const viewerCancel = await f.call('POST', `/v1/fl/rounds/${view.id}/cancel`, {
      json: { reason: 'x' },
      token: f.tokens.viewer,
    });
    assert.equal(viewerCancel.status, 403);
    const operatorApprove = await f.call('POST', `/v1/fl/rounds/${view.id}/approve`, {
      token: f.tokens.operator,
    });
    assert.equal(operatorApprove.status, 403);
    const notAwaiting = await f.call('POST', `/v1/fl/rounds/${view.id}/approve`, {
      token: f.tokens.approver,
    });
    assert.equal(notAwaiting.status, 409);
    const cancelled = await f.call('POST', `/v1/fl/rounds/${view.id}/cancel`, {
      json: { reason: 'wrong target' },
      token: f.tokens.operator,
    });
    assert.equal(cancelled.status, 200);
    assert.equal(((await cancelled.json()) as View).status, 'cancelled');
    const again = await f.call('POST', `/v1/fl/rounds/${view.id}/cancel`, {
      json: { reason: 'x' },
      token: f.tokens.operator,
    });
    assert.equal(again.status, 409);
    assert.equal(
      (await f.call('GET', '/v1/fl/rounds/fl-nope-0001', { token: f.tokens.viewer })).status,
      404,
    );
    assert.equal((await f.call('GET', '/v1/fl/rounds', { token: null })).status, 401);
    assert.equal((await start({}, f.tokens.viewer)).status, 403);
  });

  it('answers 400 naming the field for bad bodies', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ model: 'Bad Name' }, /model/],
      [{ evalSet: undefined }, /evalSet/],
      [{ config: { fraction: 2 } }, /config\.fraction/],
      [{ config: { strategy: { kind: 'trimmed-mean', beta: 0.7 } } }, /config\.strategy\.beta/],
      [{ config: { learningrate: 0.1 } }, /config\.learningrate/],
      [{ deadline: 'soon' }, /deadline/],
      [{ target: 'tag:' }, /target/],
      [{ rollout: { waves: 'lots' } }, /rollout\.waves/],
      [{ rollout: { colour: 'red' } }, /rollout\.colour/],
      [{ surprise: 1 }, /surprise/],
    ];
    for (const [over, field] of cases) {
      const { status, view } = await start(over);
      assert.equal(status, 400, JSON.stringify(over));
      assert.match(view.error!.message, field);
    }
    assert.equal((await start({ model: 'unknown-model' })).status, 404);
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await (await f.call('GET', '/openapi.json', { token: null })).json()) as {
      paths: Record<string, unknown>;
    };
    for (const path of [
      '/v1/fl/rounds',
      '/v1/fl/rounds/{id}',
      '/v1/fl/rounds/{id}/cancel',
      '/v1/fl/rounds/{id}/approve',
    ]) {
      assert.ok(doc.paths[path], path);
    }
  });
});
