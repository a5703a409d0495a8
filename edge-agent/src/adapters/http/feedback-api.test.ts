/**
 * `POST /v1/feedback` and `GET /v1/feedback/stats` through `app.request()`,
 * on a 3-class echo model (its outputs are its input rows, so a test picks
 * the predictions) and the memory label store, with an injected clock:
 * single and batch labels, every kind of refusal with its status and code,
 * and nothing stored or counted after a refusal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BundleModelRef } from '@fleet/protocol';
import { createFeedback } from '../../core/feedback.ts';
import { createInferenceService } from '../../core/inference-service.ts';
import type { LoadedModel } from '../../core/loaded-model.ts';
import { createMemoryLabelStore } from '../memory/memory-label-store.ts';
import { expectError, json, streamed } from './__fixtures__/infer-requests.ts';
import { createInferApi } from './infer-api.ts';

const T0 = Date.parse('2026-11-27T10:00:00Z');
const ref: BundleModelRef = {
  name: 'echo',
  version: '1.0.0',
  release: 1,
  bundleId: 'a'.repeat(64),
};
const echo: LoadedModel = {
  key: 'echo',
  inputName: 'input',
  outputName: 'probabilities',
  inputWidth: 3,
  run: (input) => Promise.resolve({ outputs: input.slice(), outputWidth: 3 }),
};
/** Rows predicting class 0, 1, 2. */
const ROWS = [
  [0.8, 0.1, 0.1],
  [0.1, 0.8, 0.1],
  [0.1, 0.1, 0.8],
];

function setup(recent = { maxRows: 100, maxAgeMs: 60_000 }) {
  const clock = { now: T0 };
  const nowMs = () => clock.now;
  const service = createInferenceService({ nowMs });
  service.setActive(echo, ref);
  const store = createMemoryLabelStore({ nowMs });
  const feedback = createFeedback({ store, nowMs, recent });
  service.observe(feedback.observer);
  const app = createInferApi(service, { feedback, maxFeedbackBodyBytes: 64 * 1024 });
  const infer = async (rows: number[][]) => {
    const response = await app.request('/v1/infer', json({ inputs: rows }));
    assert.equal(response.status, 200);
    return (await response.json()) as { id: string; ids: string[]; predictions: number[] };
  };
  const post = (body: unknown) => app.request('/v1/feedback', json(body));
  const stats = async () =>
    (await (await app.request('/v1/feedback/stats')).json()) as {
      labelled: number;
      correct: number;
      accuracy: number | null;
      storedSamples: number;
    };
  return { clock, store, feedback, app, infer, post, stats };
}

describe('POST /v1/feedback', () => {
  it('labels one row by its id; the sample is stored with its row, model and times', async () => {
    const { infer, post, stats, store, clock } = setup();
    const answer = await infer(ROWS);
    assert.deepEqual(
      answer.ids,
      [0, 1, 2].map((r) => `${answer.id}:${r}`),
    );
    clock.now += 5000;
    const response = await post({ id: answer.ids[1], label: 1 });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { accepted: 1 });
    const [sample] = await store.all();
    assert.deepEqual(Array.from(sample!.features), Array.from(new Float32Array(ROWS[1]!)));
    assert.deepEqual(sample!.model, { name: 'echo', version: '1.0.0', release: 1 });
    assert.equal(sample!.label, 1);
    assert.equal(sample!.inferenceTs, T0);
    assert.equal(sample!.labelTs, T0 + 5000);
    assert.deepEqual(await stats(), {
      model: { name: 'echo', version: '1.0.0', release: 1 },
      labelled: 1,
      correct: 1,
      accuracy: 1,
      storedSamples: 1,
      recentRows: 3,
    });
  });

  it('a one-row request may be labelled by its request id', async () => {
    const { infer, post, stats } = setup();
    const answer = await infer([ROWS[2]!]);
    assert.equal((await post({ id: answer.id, label: 0 })).status, 200);
    assert.deepEqual(await stats(), { ...(await stats()), labelled: 1, correct: 0, accuracy: 0 });
  });

  it('labels a batch, each item on its own: accepted, unknown, invalid, duplicate', async () => {
    const { infer, post, stats, store } = setup();
    const { ids } = await infer(ROWS);
    const response = await post({
      items: [
        { id: ids[0], label: 0 },
        { id: ids[1], label: 2 },
        { id: 'nope:0', label: 1 },
        { id: ids[2], label: 3 },
        { id: ids[2], label: 1.5 },
        { id: ids[0], label: 0 },
      ],
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { results: Array<{ status: string }> };
    assert.deepEqual(
      { ...body, results: body.results.map((r) => r.status) },
      {
        accepted: 2,
        unknown: 1,
        invalid: 2,
        duplicate: 1,
        results: ['accepted', 'accepted', 'unknown', 'invalid', 'invalid', 'duplicate'],
      },
    );
    assert.deepEqual(
      (await store.all()).map((s) => s.label),
      [0, 2],
    );
    const s = await stats();
    assert.deepEqual([s.labelled, s.correct, s.accuracy, s.storedSamples], [2, 1, 0.5, 2]);
  });

  it('refuses a second label for the same row (409); the first stands', async () => {
    const { infer, post, store } = setup();
    const { ids } = await infer(ROWS);
    assert.equal((await post({ id: ids[0], label: 0 })).status, 200);
    await expectError(await post({ id: ids[0], label: 2 }), 409, 'ALREADY_LABELLED');
    assert.deepEqual(
      (await store.all()).map((s) => s.label),
      [0],
    );
  });

  it('refuses an unknown id, an expired one and an evicted one with 404 UNKNOWN_INFERENCE', async () => {
    const { infer, post, clock, stats } = setup({ maxRows: 4, maxAgeMs: 60_000 });
    const first = await infer(ROWS);
    await expectError(await post({ id: 'never-given:0', label: 0 }), 404, 'UNKNOWN_INFERENCE');
    await expectError(await post({ id: `${first.id}:3`, label: 0 }), 404, 'UNKNOWN_INFERENCE');
    await expectError(await post({ id: first.id, label: 0 }), 404, 'UNKNOWN_INFERENCE'); // 3 rows: bare id names none
    const second = await infer(ROWS); // 6 rows > 4: the first request is evicted
    await expectError(await post({ id: first.ids[0], label: 0 }), 404, 'UNKNOWN_INFERENCE');
    clock.now += 60_001;
    await expectError(
      await post({ id: second.ids[0], label: 0 }),
      404,
      'UNKNOWN_INFERENCE',
      /expired/,
    );
    const s = await stats();
    assert.deepEqual([s.labelled, s.storedSamples], [0, 0]);
  });

  it('refuses a label outside the model’s classes or not an integer (400), naming it', async () => {
    const { infer, post, stats } = setup();
    const { ids } = await infer(ROWS);
    await expectError(
      await post({ id: ids[0], label: 3 }),
      400,
      'FEEDBACK_INPUT',
      /outside the model's 3 classes/,
    );
    await expectError(await post({ id: ids[0], label: -1 }), 400, 'FEEDBACK_INPUT', /integer/);
    await expectError(await post({ id: ids[0], label: 1.5 }), 400, 'FEEDBACK_INPUT', /integer/);
    await expectError(await post({ id: ids[0], label: '1' }), 400, 'FEEDBACK_INPUT', /label:/);
    assert.equal((await stats()).storedSamples, 0);
    assert.equal((await post({ id: ids[0], label: 0 })).status, 200, 'the row is still unlabelled');
  });

  it('refuses bad bodies with 400 naming the field, and oversize or non-JSON ones', async () => {
    const { app, infer, post, stats } = setup();
    const { ids } = await infer(ROWS);
    await expectError(await post({ label: 1 }), 400, 'FEEDBACK_INPUT', /id:/);
    await expectError(await post({ id: ids[0] }), 400, 'FEEDBACK_INPUT', /label:/);
    await expectError(await post({ id: ids[0], label: 1, extra: 1 }), 400, 'FEEDBACK_INPUT');
    await expectError(await post({ items: [] }), 400, 'FEEDBACK_INPUT', /items:/);
    await expectError(
      await post({ items: [{ id: ids[0] }] }),
      400,
      'FEEDBACK_INPUT',
      /items\.0\.label:/,
    );
    const many = Array.from({ length: 1001 }, () => ({ id: 'x', label: 0 }));
    await expectError(await post({ items: many }), 400, 'FEEDBACK_INPUT', /items:/);
    await expectError(
      await app.request('/v1/feedback', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"id":',
      }),
      400,
      'FEEDBACK_INPUT',
      /not valid JSON/,
    );
    await expectError(
      await app.request('/v1/feedback', json({ id: ids[0], label: 0 }, 'text/plain')),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    const oversize = await app.request('/v1/feedback', {
      ...streamed(100_000),
      headers: { 'content-type': 'application/json' },
    });
    await expectError(oversize, 413, 'PAYLOAD_TOO_LARGE');
    const s = await stats();
    assert.deepEqual([s.labelled, s.storedSamples], [0, 0]);
    assert.equal((await post({ id: ids[0], label: 0 })).status, 200, 'nothing changed');
  });

  it('a failed store write stores and counts nothing; the row may be labelled again', async () => {
    const { infer, post, store, stats } = setup();
    const { ids } = await infer(ROWS);
    const append = store.append.bind(store);
    store.append = () => Promise.reject(new Error('disk full'));
    await expectError(await post({ id: ids[0], label: 0 }), 500, 'INTERNAL');
    store.append = append;
    assert.equal((await stats()).labelled, 0);
    assert.equal((await post({ id: ids[0], label: 0 })).status, 200);
  });
});

describe('online accuracy windows', () => {
  it('counts each model’s labelled and correct predictions, per window', async () => {
    const { infer, feedback } = setup();
    const { ids } = await infer(ROWS);
    await feedback.labelMany([
      { id: ids[0]!, label: 0 },
      { id: ids[1]!, label: 1 },
      { id: ids[2]!, label: 0 },
    ]);
    const model = { name: 'echo', version: '1.0.0', release: 1 };
    assert.deepEqual(feedback.takeWindow(model), { labelled: 3, correct: 2 });
    assert.deepEqual(feedback.takeWindow(model), { labelled: 0, correct: 0 }, 'a new window');
    assert.deepEqual(feedback.takeWindow({ ...model, version: '2.0.0' }), {
      labelled: 0,
      correct: 0,
    });
    assert.equal(feedback.stats().accuracy, 2 / 3, 'stats are since start');
  });
});
