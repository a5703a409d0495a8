/**
 * The drift outbox: closed drift windows wait here, on durable storage, from
 * before they are published until the broker acknowledges them (QoS 1
 * PUBACK). Its rules, on any `DriftOutboxStore`:
 *
 * - **Written before sent.** `append` resolves once the flush is stored; only
 *   then does it appear in `pending()`, which is what the sender publishes.
 *   A crash after the write and before the PUBACK sends the same flush, with
 *   the same id, after the restart: the control plane keeps each id once, so
 *   nothing is lost and nothing is counted twice.
 * - **`seq` is never reused.** `append` gives the next seq and persists the
 *   counter before the flush itself; on open the next seq is above both the
 *   counter and every stored flush. If the counters were damaged (moved
 *   aside and reported), the next seq is the current epoch millisecond, or
 *   above the stored flushes if higher: far above any count a device reaches
 *   by flushing, so an old seq is not given out again.
 * - **Bounded.** At most `maxFlushes` flushes and `maxBytes` of them (their
 *   JSON). A new flush that would pass either bound pushes the OLDEST out:
 *   they are counted in `dropped` (persisted), which the agent reports. The
 *   newest data is what tells whether the model drifts now, and a device cut
 *   off for long cannot keep everything; the count says how much is missing.
 *   The newest flush is always kept, even alone above `maxBytes`.
 * - One mutation at a time (append, ack, discard): counters are never
 *   written out of order.
 *
 * @example
 *   const outbox = createDriftOutbox({ store, nowMs });
 *   const corrupt = await outbox.open();
 *   const flush = await outbox.append(draft); // durable: now publish it
 *   await outbox.ack(flush.seq); // after the PUBACK
 */
import { driftFlushBytes, type DriftFlush, type DriftFlushDraft } from './drift-flush.ts';
import type { CorruptEntry, DriftOutboxCounters, DriftOutboxStore } from './storage.ts';

export interface DriftOutboxBounds {
  maxFlushes: number;
  maxBytes: number;
}

/**
 * 256 flushes, 16 MiB: at the default flush bounds (5 minutes or 1,000
 * samples) about 21 hours of flushes, and about 50 KB a flush for the
 * default 16 signals, so the count bound is the one reached first.
 */
export const DEFAULT_DRIFT_OUTBOX_BOUNDS: DriftOutboxBounds = Object.freeze({
  maxFlushes: 256,
  maxBytes: 16 * 1024 * 1024,
});

export interface DriftOutboxOptions {
  store: DriftOutboxStore;
  bounds?: Partial<DriftOutboxBounds>;
  /** Epoch ms: the seq floor after damaged counters. */
  nowMs: () => number;
}

export interface DriftOutboxStats {
  /** Flushes stored and not yet acknowledged. */
  pending: number;
  pendingBytes: number;
  /** Flushes written by this process. */
  written: number;
  /** Flushes acknowledged (and deleted) by this process. */
  acked: number;
  /** Flushes dropped unsent, ever (persisted): pushed out by the bound, or unsendable. */
  dropped: number;
  nextSeq: number;
}

export interface DriftOutbox {
  /** Loads what is stored; returns the damaged entries the store moved aside. */
  open(): Promise<CorruptEntry[]>;
  /** Gives the draft its seq and stores it (dropping the oldest past a bound); resolves when durable. */
  append(draft: DriftFlushDraft): Promise<DriftFlush>;
  /** The broker acknowledged `seq`: it is deleted. An unknown seq is ignored. */
  ack(seq: number): Promise<void>;
  /** Deletes a flush that can never be sent (the broker or the schema refuses it) and counts it dropped. */
  discard(seq: number): Promise<void>;
  /** The stored, unacknowledged flushes, lowest seq first. */
  pending(): readonly DriftFlush[];
  stats(): DriftOutboxStats;
}

export function createDriftOutbox(options: DriftOutboxOptions): DriftOutbox {
  const { store } = options;
  const bounds = { ...DEFAULT_DRIFT_OUTBOX_BOUNDS, ...options.bounds };
  const pending: Array<{ flush: DriftFlush; bytes: number }> = [];
  let pendingBytes = 0;
  let counters: DriftOutboxCounters = { nextSeq: 0, dropped: 0 };
  let written = 0;
  let acked = 0;
  let opened = false;
  let chain: Promise<unknown> = Promise.resolve();

  /** Runs mutations one at a time, in call order; a failed one does not stop the next. */
  function serially<T>(work: () => Promise<T>): Promise<T> {
    const run = chain.then(work, work);
    chain = run.catch(() => undefined);
    return run;
  }

  function assertOpen(): void {
    if (!opened) throw new Error('drift outbox used before open()');
  }

  function takeOut(index: number): DriftFlush {
    const [entry] = pending.splice(index, 1);
    pendingBytes -= entry!.bytes;
    return entry!.flush;
  }

  /** The oldest flushes that must go for one of `incomingBytes` to fit. */
  function evictFor(incomingBytes: number): DriftFlush[] {
    const out: DriftFlush[] = [];
    while (
      pending.length > 0 &&
      (pending.length + 1 > bounds.maxFlushes || pendingBytes + incomingBytes > bounds.maxBytes)
    ) {
      out.push(takeOut(0));
    }
    return out;
  }

  /** Deletes a pending flush: acknowledged, or dropped (counted, persisted first). */
  function removePending(seq: number, why: 'acked' | 'dropped'): Promise<void> {
    return serially(async () => {
      assertOpen();
      const index = pending.findIndex((e) => e.flush.seq === seq);
      if (index < 0) return;
      takeOut(index);
      if (why === 'dropped') {
        counters = { ...counters, dropped: counters.dropped + 1 };
        await store.saveCounters({ ...counters });
      }
      await store.remove(seq);
      if (why === 'acked') acked++;
    });
  }

  return {
    open: () =>
      serially(async () => {
        const contents = await store.load();
        const flushes = [...contents.flushes].sort((a, b) => a.seq - b.seq);
        const above = flushes.length > 0 ? flushes[flushes.length - 1]!.seq + 1 : 0;
        if (contents.counters === 'missing') counters = { nextSeq: above, dropped: 0 };
        else if (contents.counters === 'corrupt')
          counters = { nextSeq: Math.max(above, Math.floor(options.nowMs())), dropped: 0 };
        else
          counters = {
            nextSeq: Math.max(contents.counters.nextSeq, above),
            dropped: contents.counters.dropped,
          };
        pending.length = 0;
        pendingBytes = 0;
        for (const flush of flushes) {
          const bytes = driftFlushBytes(flush);
          pending.push({ flush, bytes });
          pendingBytes += bytes;
        }
        opened = true;
        if (contents.counters === 'corrupt') await store.saveCounters({ ...counters });
        return contents.corrupt;
      }),

    append: (draft) =>
      serially(async () => {
        assertOpen();
        const flush: DriftFlush = { ...draft, seq: counters.nextSeq };
        const bytes = driftFlushBytes(flush);
        const evicted = evictFor(bytes);
        counters = { nextSeq: flush.seq + 1, dropped: counters.dropped + evicted.length };
        // The counter first: a seq found in a file is then always below it.
        await store.saveCounters({ ...counters });
        for (const old of evicted) await store.remove(old.seq);
        await store.put(flush);
        pending.push({ flush, bytes });
        pendingBytes += bytes;
        written++;
        return flush;
      }),

    ack: (seq) => removePending(seq, 'acked'),

    discard: (seq) => removePending(seq, 'dropped'),

    pending: () => pending.map((e) => e.flush),

    stats: () => ({
      pending: pending.length,
      pendingBytes,
      written,
      acked,
      dropped: counters.dropped,
      nextSeq: counters.nextSeq,
    }),
  };
}
