/**
 * The inference API over a real socket (port 0, bounded timeouts): answers,
 * refuses oversize bodies by Content-Length and while they stream, keeps the
 * connection usable for the next request, and closes promptly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mnistShapedBundle, type TestBundle } from '../../__fixtures__/mnist-shaped-bundle.ts';
import { createInferenceService } from '../../core/inference-service.ts';
import type { LoadedModel } from '../../core/loaded-model.ts';
import { createModelRuntime } from '../onnx/model-runtime.ts';
import { createInferApi, serveInferApi } from './infer-api.ts';
import {
  expectAnswer,
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

describe('serveInferApi', () => {
  it('serves on a real port: infer, refuse oversize, health, close', async () => {
    const service = createInferenceService({ nowMs: Date.now, perfNowMs: () => performance.now() });
    service.setActive(model, bundle.ref);
    const app = createInferApi(service, { maxBodyBytes: 64 * 1024 });
    const server = await serveInferApi(app, { host: '127.0.0.1', port: 0 });
    try {
      assert.ok(server.port > 0);
      const base = `http://127.0.0.1:${server.port}`;
      const timeout = () => AbortSignal.timeout(5000);
      const good = await fetch(`${base}/v1/infer`, {
        ...json({ inputs: digits }),
        signal: timeout(),
      });
      await expectAnswer(good, 3, bundle.ref);
      const raw = await fetch(`${base}/v1/infer`, {
        ...octets(floatBytes(digits.slice(0, 2))),
        signal: timeout(),
      });
      await expectAnswer(raw, 2, bundle.ref);
      const big = await fetch(`${base}/v1/infer`, {
        ...octets(new Uint8Array(64 * 1024 + 4)),
        signal: timeout(),
      });
      await expectError(big, 413, 'PAYLOAD_TOO_LARGE');
      const chunked = await fetch(`${base}/v1/infer`, {
        ...streamed(256 * 1024, 16 * 1024),
        signal: timeout(),
      });
      await expectError(chunked, 413, 'PAYLOAD_TOO_LARGE');
      const health = await fetch(`${base}/healthz`, { signal: timeout() });
      assert.equal(health.status, 200);
      await health.body?.cancel();
      await expectAnswer(
        await fetch(`${base}/v1/infer`, { ...json({ input: digits[2] }), signal: timeout() }),
        1,
        bundle.ref,
      );
    } finally {
      const closing = server.close();
      const timer = new Promise((_, reject) =>
        setTimeout(() => reject(new Error('close took over 5 s')), 5000).unref(),
      );
      await Promise.race([closing, timer]);
    }
  });
});
