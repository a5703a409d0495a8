/**
 * The local inference API on the real int8 model, through `app.request()`:
 * good requests in JSON and raw float32, every kind of bad request refused
 * with its status and code, and the model still serving right after each
 * refusal. The real socket is in serve-infer-api.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  MNIST_WIDTH,
  mnistShapedBundle,
  type TestBundle,
} from '../../__fixtures__/mnist-shaped-bundle.ts';
import { createInferenceService, type InferenceService } from '../../core/inference-service.ts';
import type { LoadedModel } from '../../core/loaded-model.ts';
import { createModelRuntime } from '../onnx/model-runtime.ts';
import { createInferApi, DEFAULT_MAX_INFER_BODY_BYTES, type InferApiOptions } from './infer-api.ts';
import {
  expectAnswer as expectAnswerOf,
  expectError,
  floatBytes,
  json,
  octets,
  streamed,
} from './__fixtures__/infer-requests.ts';

const runtime = createModelRuntime();
let bundle: TestBundle;
let model: LoadedModel;
let digits: number[][];

before(async () => {
  bundle = await mnistShapedBundle();
  model = await runtime.load(bundle.bundleId, bundle.modelBytes, bundle.io);
  digits = bundle.golden.cases.slice(0, 3).map((c) => c.input);
});
after(() => runtime.release(bundle.bundleId));

function api(options: InferApiOptions = {}) {
  const service = createInferenceService({ nowMs: Date.now, perfNowMs: () => performance.now() });
  service.setActive(model, bundle.ref);
  return { service, app: createInferApi(service, options) };
}

type App = ReturnType<typeof createInferApi>;

/** Checks a 200 answer of `rows` rows from the fixture's model. */
const expectAnswer = (response: Response, rows: number) =>
  expectAnswerOf(response, rows, bundle.ref);

/** The check after every refusal: a good request right after still succeeds. */
async function stillServes(app: App): Promise<void> {
  await expectAnswer(await app.request('/v1/infer', json({ inputs: [digits[0]] })), 1);
}

describe('POST /v1/infer', () => {
  it('answers JSON rows with the model’s outputs, as the service does', async () => {
    const { app, service } = api();
    const body = await expectAnswer(await app.request('/v1/infer', json({ inputs: digits })), 3);
    const direct = await service.infer(digits);
    assert.deepEqual(body.outputs, direct.outputs);
    assert.deepEqual(body.predictions, direct.predictions);
    // the factory's recorded outputs for these digits
    body.outputs.forEach((row, r) =>
      row.forEach((v, j) => assert.ok(Math.abs(v - bundle.golden.cases[r]!.output[j]!) < 1e-6)),
    );
  });

  it('answers one JSON row given as { input }', async () => {
    const { app } = api();
    const body = await expectAnswer(await app.request('/v1/infer', json({ input: digits[1] })), 1);
    assert.equal(body.outputs.length, 1);
  });

  it('answers raw little-endian float32 rows, with or without x-batch', async () => {
    const { app } = api();
    const fromJson = await expectAnswer(
      await app.request('/v1/infer', json({ inputs: digits })),
      3,
    );
    const raw = await expectAnswer(await app.request('/v1/infer', octets(floatBytes(digits))), 3);
    assert.deepEqual(raw.outputs, fromJson.outputs);
    await expectAnswer(
      await app.request('/v1/infer', octets(floatBytes(digits), { 'x-batch': '3' })),
      3,
    );
    await expectAnswer(
      await app.request('/v1/infer', {
        ...octets(floatBytes(digits)),
        headers: { 'content-type': 'application/octet-stream; charset=binary' },
      }),
      3,
    );
  });

  it('refuses bad shapes, wrong types and non-finite numbers (400), and keeps serving', async () => {
    const { app } = api();
    const nanRow = floatBytes([digits[0]!]);
    new DataView(nanRow.buffer).setFloat32(4 * 10, NaN, true);
    const cases: [RequestInit, RegExp][] = [
      [json({ inputs: [digits[0]!.slice(1)] }), /row 0 has 783 numbers, the model takes 784/],
      [json({ inputs: [digits[0], [...digits[1]!, 0]] }), /row 1 has 785 numbers/],
      [json({ inputs: [] }), /no rows/],
      [json({ input: [] }), /row 0 has 0 numbers/],
      [json({ inputs: [['0.5', ...digits[0]!.slice(1)]] }), /inputs\.0\.0: .*number/],
      [json({ inputs: [[null]] }), /inputs\.0\.0/],
      [json({ inputs: digits[0] }), /inputs\.0: .*array/],
      [json({ inputs: 'digits' }), /inputs: .*array/],
      [json({ rows: digits }), /expected \{ inputs: number\[\]\[\] \} or \{ input: number\[\] \}/],
      [json({ inputs: digits, input: digits[0] }), /inputs/],
      [json([digits[0]]), /body: /],
      [json('{"inputs": [[NaN]]}'), /not valid JSON/],
      [json(`{"inputs": [[1e999${',0'.repeat(783)}]]}`), /inputs\.0\.0/],
      [json('{"inputs": [[0,'), /not valid JSON/],
      [octets(nanRow), /row 0, column 10 is NaN/],
      [
        octets(floatBytes(digits).subarray(0, 4 * 783)),
        /783 numbers do not split into rows of 784/,
      ],
      [
        octets(floatBytes(digits).subarray(0, 4 * 784 + 2)),
        /3138 bytes is not a whole number of float32s/,
      ],
      [octets(floatBytes(digits), { 'x-batch': '2' }), /2352 numbers are not 2 rows of 784/],
      [octets(floatBytes(digits), { 'x-batch': '-3' }), /x-batch must be a positive integer/],
      [octets(floatBytes(digits), { 'x-batch': 'three' }), /x-batch must be a positive integer/],
    ];
    for (const [init, message] of cases) {
      await expectError(await app.request('/v1/infer', init), 400, 'INFER_INPUT', message);
      await stillServes(app);
    }
  });

  it('refuses an empty body (400), in either media type', async () => {
    const { app } = api();
    for (const init of [json(''), octets(new Uint8Array(0))]) {
      await expectError(await app.request('/v1/infer', init), 400, 'INFER_INPUT', /empty/);
      await stillServes(app);
    }
  });

  it('refuses other media types (415), unread', async () => {
    const { app } = api();
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data']) {
      const response = await app.request('/v1/infer', json({ inputs: digits }, type));
      await expectError(response, 415, 'UNSUPPORTED_MEDIA_TYPE', new RegExp(type));
      await stillServes(app);
    }
    const none = await app.request('/v1/infer', {
      method: 'POST',
      body: JSON.stringify({ inputs: digits }),
    });
    // A string body gets text/plain from the Request constructor; a bare buffer gets no type at all.
    assert.equal(none.status, 415);
    const bare = await app.request('/v1/infer', { method: 'POST', body: floatBytes(digits) });
    await expectError(bare, 415, 'UNSUPPORTED_MEDIA_TYPE', /\(none\)/);
    await stillServes(app);
  });

  it('refuses a body over the cap (413) while it streams, and keeps serving', async () => {
    const { app } = api();
    await expectError(
      await app.request('/v1/infer', streamed(DEFAULT_MAX_INFER_BODY_BYTES + 1)),
      413,
      'PAYLOAD_TOO_LARGE',
      /larger than 4194304 bytes/,
    );
    await stillServes(app);
    // A Content-Length above the cap is refused before any byte is read.
    await expectError(
      await app.request('/v1/infer', {
        ...octets(new Uint8Array(16)),
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(DEFAULT_MAX_INFER_BODY_BYTES + 1),
        },
      }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    await stillServes(app);
    // Exactly at the cap is read (and then refused for its shape, not its size).
    const atCap = await app.request('/v1/infer', streamed(DEFAULT_MAX_INFER_BODY_BYTES));
    await expectError(atCap, 400, 'INFER_INPUT', /do not split into rows of 784/);
  });

  it('takes its cap from the options', async () => {
    const { app } = api({ maxBodyBytes: 4 * MNIST_WIDTH * 2 });
    await expectAnswer(await app.request('/v1/infer', octets(floatBytes(digits.slice(0, 2)))), 2);
    await expectError(
      await app.request('/v1/infer', octets(floatBytes(digits))),
      413,
      'PAYLOAD_TOO_LARGE',
      /larger than 6272 bytes/,
    );
  });

  it('counts refused inferences as errors in the health window', async () => {
    const { app, service } = api();
    await stillServes(app);
    await app.request('/v1/infer', json({ inputs: [[1, 2]] }));
    const health = service.takeHealth(Date.now());
    assert.deepEqual([health.requests, health.errors], [2, 1]);
  });

  it('answers 503 NO_MODEL without a model, and 500 when the runtime fails', async () => {
    const idle = createInferenceService({ nowMs: Date.now });
    const app = createInferApi(idle);
    await expectError(await app.request('/v1/infer', json({ inputs: digits })), 503, 'NO_MODEL');
    const broken: LoadedModel = { ...model, run: () => Promise.reject(new Error('native crash')) };
    idle.setActive(broken, bundle.ref);
    await expectError(
      await app.request('/v1/infer', json({ inputs: digits })),
      500,
      'INFER_FAILED',
      /native crash/,
    );
  });
});

describe('GET /healthz', () => {
  it('names the active model, or answers 503 NO_MODEL', async () => {
    const service: InferenceService = createInferenceService({ nowMs: Date.now });
    const app = createInferApi(service);
    await expectError(await app.request('/healthz'), 503, 'NO_MODEL');
    service.setActive(model, bundle.ref);
    const response = await app.request('/healthz');
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: 'ok', model: bundle.ref });
  });

  it('answers unknown routes with a JSON 404', async () => {
    const { app } = api();
    await expectError(await app.request('/v1/nothing'), 404, 'NOT_FOUND');
  });
});
