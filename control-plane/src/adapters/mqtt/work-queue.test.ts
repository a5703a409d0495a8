import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createWorkQueue } from './work-queue.ts';

const tick = () => new Promise((r) => setTimeout(r, 5));

it('runs at most `concurrency` at once, refuses past `maxQueued`, and drains only when all is done', async () => {
  const errors: unknown[] = [];
  const queue = createWorkQueue({ concurrency: 2, maxQueued: 3, onError: (e) => errors.push(e) });
  let running = 0;
  let peak = 0;
  let done = 0;
  const job =
    (fail = false) =>
    async () => {
      running++;
      peak = Math.max(peak, running);
      await tick();
      running--;
      done++;
      if (fail) throw new Error('boom');
    };
  await queue.drain(); // idle: resolves at once
  const accepted = [job(), job(), job(true), job(), job(), job()].map((w) => queue.push(w));
  // Two start at once; three wait; the sixth is refused.
  assert.deepEqual(accepted, [true, true, true, true, true, false]);
  await queue.drain();
  assert.equal(done, 5);
  assert.equal(peak, 2);
  assert.equal(errors.length, 1, 'a failing job is reported, not fatal');
});
