import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createWorkQueue, supersedingKey } from './work-queue.ts';

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

it('pushLatest keeps every message below the bound, and past it replaces the waiting one of its key', async () => {
  const queue = createWorkQueue({ concurrency: 1, maxQueued: 2, onError: () => undefined });
  const ran: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const job = (name: string, wait?: Promise<void>) => async () => {
    ran.push(name);
    await wait;
  };
  queue.pushLatest('dev-a state', job('a1', gate)); // starts at once (concurrency 1)
  queue.pushLatest('dev-a state', job('a2')); // waits (1 of 2)
  queue.pushLatest('dev-a state', job('a3')); // waits too: below the bound nothing is replaced
  assert.equal(queue.push(job('telemetry-1')), false, 'push is still bounded');
  queue.pushLatest('dev-a state', job('a4')); // at the bound: replaces a3, the newest of its key
  queue.pushLatest('dev-b evt', job('b1')); // at the bound, none of its key waits: joins past it
  queue.pushLatest('dev-b evt', job('b2')); // replaces b1
  release();
  await queue.drain();
  assert.deepEqual(ran, ['a1', 'a2', 'a4', 'b2']);
  // Drained: below the bound again, every message is kept.
  queue.pushLatest('dev-a state', job('a5'));
  assert.equal(queue.push(job('telemetry-2')), true);
  await queue.drain();
  assert.deepEqual(ran.slice(4), ['a5', 'telemetry-2']);
});

it("supersedingKey: a device's state and evt topics, per subscription; nothing else", () => {
  assert.equal(supersedingKey(1, 'fleet/v1/dev/pump-1/state'), '1 fleet/v1/dev/pump-1/state');
  assert.equal(supersedingKey(2, 'fleet/v1/dev/pump-1/evt'), '2 fleet/v1/dev/pump-1/evt');
  assert.equal(supersedingKey(1, 'fleet/v1/dev/pump-1/telemetry'), null);
  assert.equal(supersedingKey(1, 'fleet/v1/dev/pump-1/update'), null);
  assert.equal(supersedingKey(1, 'fleet/v1/dev/pump-1/blocks/req'), null);
  assert.equal(supersedingKey(1, 'elsewhere/pump-1/state'), null);
});
