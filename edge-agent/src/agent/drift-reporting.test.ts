/**
 * Drift reporting on a fake network: flushes are written before they are
 * published and deleted only on the PUBACK; a failed publish or an outage
 * keeps them, and they go out in seq order when the connection is back; a
 * crash between the write and the PUBACK sends the same flush (same id, same
 * seq) after the restart. The filesystem outbox is the real one.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSeededRandom, fromUtf8, utf8 } from '@fleet/protocol';
import { tinyBatch, tinyModel, tinyRef, tinySpec } from '../__fixtures__/tiny-drift-model.ts';
import { createFsDriftOutboxStore } from '../adapters/fs/fs-drift-outbox-store.ts';
import { createMemoryDriftOutboxStore } from '../adapters/memory/memory-stores.ts';
import type { DriftFlush } from '../core/drift-flush.ts';
import { createDriftOutbox } from '../core/drift-outbox.ts';
import type { DriftOutboxStore } from '../core/storage.ts';
import { createDriftReporting, type DriftEvent } from './drift-reporting.ts';

const T0 = Date.parse('2026-11-27T10:00:00Z');
const root = await mkdtemp(join(tmpdir(), 'fleet-agent-drift-reporting-'));
after(() => rm(root, { recursive: true, force: true }));

let nextId = 0;

/** One agent's drift reporting on `store`, with a network the test controls. */
async function rig(store: DriftOutboxStore, log: string[] = []) {
  const net = { connected: true, fail: false, sent: [] as DriftFlush[] };
  const events: DriftEvent[] = [];
  const outbox = createDriftOutbox({ store, nowMs: () => T0 });
  const reporting = createDriftReporting({
    outbox,
    nowMs: () => T0,
    random: createSeededRandom(7),
    newId: () => `flush-${String(++nextId).padStart(6, '0')}`,
    // The test's "signature": the flush itself as JSON.
    encode: (flush) => utf8(JSON.stringify(flush)),
    send: (bytes) => {
      const flush = JSON.parse(fromUtf8(bytes)) as DriftFlush;
      log.push(`send ${flush.seq}`);
      if (!net.connected || net.fail) return Promise.reject(new Error('connection lost'));
      net.sent.push(flush);
      return Promise.resolve();
    },
    connected: () => net.connected,
    onEvent: (event) => events.push(event),
  });
  await reporting.start();
  // Release 1 of the tiny model; a window closes every 5 sampled rows.
  reporting.setModel(
    tinyModel(1, { spec: tinySpec({ flush: { maxSamples: 5, maxIntervalMs: 60_000 } }) }),
  );
  /** Infers `windows` windows' worth of rows and waits for the writes and publishes. */
  const windows = async (count: number) => {
    const { inputs, outputs } = tinyBatch(5);
    for (let i = 0; i < count; i++) reporting.observer(tinyRef(1), inputs, outputs, 5);
    await reporting.idle();
  };
  return { reporting, outbox, net, events, windows };
}

/** A memory store that logs what is written and deleted, in order. */
function loggedStore(log: string[]): DriftOutboxStore {
  const store = createMemoryDriftOutboxStore();
  return {
    load: () => store.load(),
    put: (flush) => store.put(flush).then(() => void log.push(`put ${flush.seq}`)),
    remove: (seq) => store.remove(seq).then(() => void log.push(`remove ${seq}`)),
    saveCounters: (c) => store.saveCounters(c),
  };
}

test('a flush is written before it is published, and deleted only after the PUBACK', async () => {
  const log: string[] = [];
  const { reporting, net, windows } = await rig(loggedStore(log), log);
  await windows(2);
  assert.deepEqual(log, ['put 0', 'send 0', 'remove 0', 'put 1', 'send 1', 'remove 1']);
  assert.deepEqual(
    net.sent.map((f) => [f.seq, f.sampled, f.inferences, f.rolloutId]),
    [
      [0, 5, 5, 'rollout-0001'],
      [1, 5, 5, 'rollout-0001'],
    ],
  );
  assert.deepEqual(
    [reporting.stats().written, reporting.stats().sent, reporting.stats().pending],
    [2, 2, 0],
  );
});

test('failed publishes keep their flushes; after reconnection they go out in seq order', async () => {
  const { reporting, net, windows } = await rig(createMemoryDriftOutboxStore());
  net.fail = true; // connected, but every publish fails (the socket dies under it)
  await windows(2);
  net.connected = false; // then offline: nothing is even tried
  await windows(1);
  assert.ok(reporting.stats().publishFailures >= 2);
  assert.equal(net.sent.length, 0);
  assert.equal(reporting.stats().pending, 3);
  net.connected = true;
  net.fail = false;
  reporting.onConnect();
  await reporting.idle();
  assert.deepEqual(
    net.sent.map((f) => f.seq),
    [0, 1, 2],
  );
  const stats = reporting.stats();
  assert.deepEqual([stats.pending, stats.sent], [0, 3]);
  assert.equal(stats.resent, stats.publishFailures, 'each failed publish was repeated once');
});

test('a crash after the write and before the PUBACK: the restarted agent sends the same flush, id and seq', async () => {
  const dataDir = await mkdtemp(join(root, 'crash-'));
  const first = await rig(createFsDriftOutboxStore(dataDir));
  await first.windows(1); // published and acknowledged
  first.net.connected = false;
  await first.windows(1); // written, never published
  const written = first.reporting.stats();
  assert.deepEqual([written.written, written.sent, written.pending], [2, 1, 1]);
  const [unsent] = first.outbox.pending();
  first.reporting.kill();

  const second = await rig(createFsDriftOutboxStore(dataDir));
  await second.reporting.idle();
  assert.equal(second.net.sent.length, 1, 'sent again at start');
  assert.deepEqual(second.net.sent, [unsent], 'the same flush: same id, seq and sketches');
  assert.equal(unsent!.seq, 1);
  assert.equal(second.reporting.stats().resent, 1);
  assert.equal(second.reporting.stats().pending, 0);

  // Acknowledged means gone: a third start sends nothing, and the seq goes on.
  const third = await rig(createFsDriftOutboxStore(dataDir));
  await third.reporting.idle();
  assert.equal(third.net.sent.length, 0);
  await third.windows(1);
  assert.deepEqual(
    third.net.sent.map((f) => f.seq),
    [2],
  );
});

test('a flush that cannot be signed is dropped and counted, and does not hold up the next', async () => {
  const store = createMemoryDriftOutboxStore();
  const outbox = createDriftOutbox({ store, nowMs: () => T0 });
  const sent: number[] = [];
  const events: DriftEvent[] = [];
  const reporting = createDriftReporting({
    outbox,
    nowMs: () => T0,
    random: createSeededRandom(3),
    newId: () => `flush-${String(++nextId).padStart(6, '0')}`,
    encode: (flush) => {
      if (flush.seq === 0) throw new Error('TOO_LARGE: a signal sketch is at most 16384 bytes');
      return utf8(String(flush.seq));
    },
    send: (bytes) => {
      sent.push(Number(fromUtf8(bytes)));
      return Promise.resolve();
    },
    connected: () => true,
    onEvent: (event) => events.push(event),
  });
  await reporting.start();
  reporting.setModel(
    tinyModel(1, { spec: tinySpec({ flush: { maxSamples: 5, maxIntervalMs: 60_000 } }) }),
  );
  const { inputs, outputs } = tinyBatch(10);
  reporting.observer(tinyRef(1), inputs, outputs, 10);
  await reporting.idle();
  await reporting.idle();
  assert.deepEqual(sent, [1]);
  assert.equal(reporting.stats().dropped, 1);
  assert.equal(reporting.stats().pending, 0);
  assert.deepEqual(
    events.map((e) => e.type === 'drift-error' && e.code),
    ['DRIFT_UNSENDABLE'],
  );
});

test('a clean shutdown writes the open window; it is sent after the restart', async () => {
  const store = createMemoryDriftOutboxStore();
  const first = await rig(store);
  first.net.connected = false;
  const { inputs, outputs } = tinyBatch(3);
  first.reporting.observer(tinyRef(1), inputs, outputs, 3);
  await first.reporting.close();
  const second = await rig(store);
  await second.reporting.idle();
  assert.deepEqual(
    second.net.sent.map((f) => [f.seq, f.sampled]),
    [[0, 3]],
  );
});
