/**
 * The broadcast gate on a fake clock: the broadcast goes when every device
 * is ready, when readiness stalls, or at the maximum wait, never before the
 * minimum delay, and once per gate.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBroadcastGate, type BroadcastGateOptions } from './broadcast-gate.ts';

function fakeClock() {
  let now = 0;
  let seq = 0;
  const pending = new Map<number, { atMs: number; fn: () => void }>();
  return {
    nowMs: () => now,
    timers: {
      setTimeout(fn: () => void, ms: number) {
        pending.set(++seq, { atMs: now + ms, fn });
        return seq;
      },
      clearTimeout(handle: unknown) {
        pending.delete(handle as number);
      },
    },
    /** Moves time forward, firing what falls due in order. */
    advance(ms: number) {
      const end = now + ms;
      for (;;) {
        let next: [number, { atMs: number; fn: () => void }] | null = null;
        for (const entry of pending) if (!next || entry[1].atMs < next[1].atMs) next = entry;
        if (!next || next[1].atMs > end) break;
        pending.delete(next[0]);
        now = next[1].atMs;
        next[1].fn();
      }
      now = end;
    },
    pendingCount: () => pending.size,
  };
}

function gateWith(overrides: Partial<BroadcastGateOptions> = {}) {
  const clock = fakeClock();
  const sent: Array<{ bundleId: string; atMs: number }> = [];
  const gate = createBroadcastGate({
    minDelayMs: 0,
    quietMs: 1_000,
    maxWaitMs: 30_000,
    nowMs: clock.nowMs,
    timers: clock.timers,
    broadcast: (bundleId) => sent.push({ bundleId, atMs: clock.nowMs() }),
    ...overrides,
  });
  return { clock, sent, gate };
}

describe('broadcast gate', () => {
  it('broadcasts as soon as every device sent a deploy is ready', () => {
    const { clock, sent, gate } = gateWith();
    gate.expect('b1', ['d1', 'd2', 'd3']);
    clock.advance(100);
    gate.ready('b1', 'd1');
    gate.ready('b1', 'd2');
    clock.advance(100);
    assert.deepEqual(sent, []);
    gate.ready('b1', 'd3');
    clock.advance(0);
    assert.deepEqual(sent, [{ bundleId: 'b1', atMs: 200 }]);
    assert.equal(gate.waiting().size, 0);
  });

  it('broadcasts when readiness stalls for the quiet period, not before', () => {
    const { clock, sent, gate } = gateWith();
    gate.expect('b1', ['d1', 'd2', 'd3']);
    clock.advance(5_000); // nobody ready yet: the quiet period has not started
    assert.deepEqual(sent, []);
    gate.ready('b1', 'd1');
    clock.advance(900);
    gate.ready('b1', 'd2'); // restarts the quiet period
    clock.advance(900);
    assert.deepEqual(sent, []);
    clock.advance(100);
    assert.deepEqual(sent, [{ bundleId: 'b1', atMs: 6_900 }]);
  });

  it('broadcasts at the maximum wait when no device answers', () => {
    const { clock, sent, gate } = gateWith();
    gate.expect('b1', ['d1']);
    clock.advance(29_999);
    assert.deepEqual(sent, []);
    clock.advance(1);
    assert.deepEqual(sent, [{ bundleId: 'b1', atMs: 30_000 }]);
  });

  it('never broadcasts before the minimum delay, even with every device ready', () => {
    const { clock, sent, gate } = gateWith({ minDelayMs: 1_500 });
    gate.expect('b1', ['d1']);
    gate.ready('b1', 'd1');
    clock.advance(1_499);
    assert.deepEqual(sent, []);
    clock.advance(1);
    assert.deepEqual(sent, [{ bundleId: 'b1', atMs: 1_500 }]);
  });

  it('lets devices deployed while the gate is open join its wait, and keeps bundles apart', () => {
    const { clock, sent, gate } = gateWith();
    gate.expect('b1', ['d1']);
    gate.expect('b2', ['d9']);
    clock.advance(10);
    gate.expect('b1', ['d2']);
    gate.ready('b1', 'd1');
    gate.ready('b2', 'd1'); // d1 is not waited for on b2: ignored
    clock.advance(10);
    assert.deepEqual(sent, []);
    assert.deepEqual(
      gate.waiting(),
      new Map([
        ['b1', 1],
        ['b2', 1],
      ]),
    );
    gate.ready('b1', 'd2');
    clock.advance(0);
    assert.deepEqual(sent, [{ bundleId: 'b1', atMs: 20 }]);
  });

  it('fires once per gate; readiness after the broadcast is ignored, a later wave opens a new gate', () => {
    const { clock, sent, gate } = gateWith();
    gate.expect('b1', ['d1']);
    gate.ready('b1', 'd1');
    clock.advance(0);
    gate.ready('b1', 'd1');
    clock.advance(60_000);
    assert.equal(sent.length, 1);
    gate.expect('b1', ['d2']);
    gate.ready('b1', 'd2');
    clock.advance(0);
    assert.equal(sent.length, 2);
  });

  it('stops waiting for devices it is told to forget (their deploy was not sent)', () => {
    const { clock, sent, gate } = gateWith();
    gate.expect('b1', ['d1', 'd2', 'd3']);
    gate.ready('b1', 'd1');
    gate.ready('b1', 'd2');
    clock.advance(100);
    assert.deepEqual(sent, [], 'd3 is still awaited');
    gate.forget('b1', ['d3']);
    clock.advance(0);
    assert.deepEqual(sent, [{ bundleId: 'b1', atMs: 100 }]);
    gate.forget('b1', ['d1']); // no gate open: nothing happens
    clock.advance(60_000);
    assert.equal(sent.length, 1);
  });

  it('says a broadcast is due while its gate is open, and not once it went or the gate closed', () => {
    const { clock, gate } = gateWith();
    assert.equal(gate.due('b1'), false, 'no deploys sent: nothing due');
    gate.expect('b1', ['d1', 'd2']);
    assert.equal(gate.due('b1'), true);
    assert.equal(gate.due('b2'), false, 'another bundle');
    gate.ready('b1', 'd1');
    gate.ready('b1', 'd2');
    clock.advance(0);
    assert.equal(gate.due('b1'), false, 'broadcast');
    gate.expect('b1', ['d3']);
    gate.close();
    assert.equal(gate.due('b1'), false, 'closed');
  });

  it('broadcasts nothing after close and leaves no timer behind', () => {
    const { clock, sent, gate } = gateWith();
    gate.expect('b1', ['d1', 'd2']);
    gate.ready('b1', 'd1');
    gate.close();
    assert.equal(clock.pendingCount(), 0);
    gate.expect('b2', ['d3']);
    clock.advance(60_000);
    assert.deepEqual(sent, []);
  });
});
