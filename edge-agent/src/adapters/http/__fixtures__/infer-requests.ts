/**
 * Request builders and answer checks shared by the inference API's tests:
 * JSON and raw float32 bodies, a chunked body without Content-Length, and
 * assertions on the answer and error shapes.
 */
import assert from 'node:assert/strict';
import type { BundleModelRef } from '@fleet/protocol';
import { MNIST_CLASSES, MNIST_WIDTH } from '../../../__fixtures__/mnist-shaped-bundle.ts';

export const json = (body: unknown, contentType = 'application/json'): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': contentType },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

export function floatBytes(rows: readonly (readonly number[])[]): Uint8Array {
  const bytes = new Uint8Array(rows.length * MNIST_WIDTH * 4);
  const view = new DataView(bytes.buffer);
  rows.flat().forEach((v, i) => view.setFloat32(i * 4, v, true));
  return bytes;
}

export const octets = (bytes: Uint8Array, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/octet-stream', ...headers },
  body: bytes,
});

export interface Answer {
  id: string;
  outputs: number[][];
  predictions: number[];
  confidences: number[];
  model: unknown;
  latencyMs: number;
}

export async function expectAnswer(
  response: Response,
  rows: number,
  model: BundleModelRef,
): Promise<Answer> {
  assert.equal(response.status, 200, await response.clone().text());
  const body = (await response.json()) as Answer;
  assert.match(body.id, /^[A-Za-z0-9_-]{16,}$/);
  assert.equal(body.outputs.length, rows);
  assert.equal(body.outputs[0]!.length, MNIST_CLASSES);
  assert.equal(body.predictions.length, rows);
  assert.equal(body.confidences.length, rows);
  assert.deepEqual(body.model, model);
  assert.ok(body.latencyMs >= 0);
  return body;
}

export async function expectError(
  response: Response,
  status: number,
  code: string,
  message?: RegExp,
) {
  const body = (await response.json()) as { error: { code: string; message: string } };
  assert.equal(response.status, status, JSON.stringify(body));
  assert.equal(body.error.code, code);
  if (message) assert.match(body.error.message, message);
}

/** A request body that arrives in chunks, with no Content-Length to trust. */
export function streamed(totalBytes: number, chunkBytes = 64 * 1024): RequestInit {
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= totalBytes) return controller.close();
      const n = Math.min(chunkBytes, totalBytes - sent);
      sent += n;
      controller.enqueue(new Uint8Array(n));
    },
  });
  // `duplex` is required by Node's fetch for a stream body; RequestInit's types lack it.
  const init: RequestInit & { duplex: 'half' } = {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body,
    duplex: 'half',
  };
  return init;
}
