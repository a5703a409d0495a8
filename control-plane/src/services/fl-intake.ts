/**
 * Federated update intake: turns a device's verified `fl-update` header and
 * its `fl-update-part`s into one `update-received` event of the round core
 * (core/fl/round-machine.ts), checking everything the core cannot:
 *
 *   header   the round exists; the core's own ordered checks (collecting,
 *            not replayed, selected, one answer per device, before the
 *            deadline, base bundle) are run on the round as stored before
 *            anything is buffered; a header failing them, and a `failed`
 *            update, go to the core at once (it counts the reason per round).
 *            An ok header passing them reserves its signed `sizeBytes` of the
 *            process-wide buffer budget (refused as `buffer-full` beyond it).
 *   parts    only for a buffered header of the same device (else counted as
 *            `unknown-header`, dropped); same round, the header's part count,
 *            every part full but the last; a redelivered identical part is
 *            ignored, a different one is malformed. Partial uploads still
 *            open at the round's deadline are dropped (`expire`) as late.
 *   complete size and SHA-256 equal the signed header; the bytes decode as a
 *            tensor set within the base architecture's tensor and element
 *            counts; the tensors are exactly the architecture's (names, dims,
 *            order); then the norm, finiteness and int8 rounding bound go to
 *            the core, which re-checks the clip.
 *
 * The clip re-check alone tolerates int8 rounding, which a crafted update can
 * spend on one large value; so an accepted update whose decoded norm is over
 * `clipNorm` is scaled down to exactly `clipNorm` before it is aggregated
 * (its `scale`, stored with it: THREATS 37). Accepted bytes go to the blob
 * store, so a restarted control plane can still aggregate them.
 *
 * Every outcome is counted in `fleet_fl_updates_total{result}`: `accepted`,
 * `failed`, a core rejection reason, or an intake one (`unknown-header`,
 * `buffer-full`). Unsigned or badly signed messages never reach this module
 * (rollout-service verifies first; they count in fleet_device_messages_total).
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import {
  MAX_FL_PART_BYTES,
  TENSOR_SET_HEADER_BYTES,
  denseParameterCount,
  denseTensorShapes,
  fromBase64,
  maxTensorSetBodyBytes,
  type DenseShape,
  type FlUpdateMessage,
  type FlUpdatePartMessage,
} from '@fleet/protocol';
import { admitOutsideCollection, admitUpdate, type Admission } from '../core/fl/round-collect.ts';
import { withinClipBound } from '../core/fl/clip-check.ts';
import { decodeUpdateContent } from '../core/fl/update-content.ts';
import type { RoundSnapshot, UpdateReceived } from '../core/fl/round-types.ts';
import type { BlobStore } from '../core/models/blob-store.ts';

/** What the intake stores with an update it hands to the core. */
export interface UpdateExtra {
  metrics: Record<string, number | null>;
  blobId: string | null;
  norm: number | null;
  scale: number;
}

export interface FlIntakeDeps {
  /** The round as stored, or null. */
  round(roundId: string): Promise<RoundSnapshot | null>;
  /** Whether the update id was recorded in any round. */
  hasUpdate(updateId: string): Promise<boolean>;
  /** The base bundle's dense architecture (its manifest's `training`), or null. */
  architecture(bundleId: string): Promise<DenseShape | null>;
  /** Steps the round with the event (under its lock); returns the core's admission. */
  submit(event: UpdateReceived, extra: UpdateExtra): Promise<Admission>;
  blobs: BlobStore;
  count(result: string): void;
  logger: Logger;
  nowMs: () => number;
  /** Most bytes of partial updates held at once (by their signed sizes). */
  maxBufferedBytes: number;
}

export interface FlIntake {
  onHeader(deviceId: string, message: FlUpdateMessage): Promise<void>;
  onPart(deviceId: string, message: FlUpdatePartMessage): Promise<void>;
  /** Drops partial uploads whose round deadline has passed (each handed to the core as late). */
  expire(): Promise<void>;
  /** Bytes reserved by buffered headers. */
  bufferedBytes(): number;
}

interface Pending {
  header: FlUpdateMessage;
  deviceId: string;
  sizeBytes: number;
  sha256: string;
  partCount: number;
  deadlineAtMs: number;
  clipNorm: number;
  parts: (Uint8Array | undefined)[];
  received: number;
}

const NO_EXTRA = { blobId: null, norm: null, scale: 1 };

export function createFlIntake(deps: FlIntakeDeps): FlIntake {
  const pending = new Map<string, Pending>();
  let buffered = 0;
  const keyOf = (deviceId: string, updateId: string) => `${deviceId}\n${updateId}`;

  function eventOf(
    deviceId: string,
    h: FlUpdateMessage,
    decoded: UpdateReceived['decoded'],
    malformedReason: string | null = null,
  ): UpdateReceived {
    return {
      type: 'update-received',
      updateId: h.id,
      deviceId,
      roundId: h.roundId,
      baseBundleId: h.model.bundleId,
      status: h.status,
      failureReason: h.reason ?? null,
      sampleCount: h.sampleCount,
      decoded,
      malformedReason,
    };
  }

  function refuse(result: string, deviceId: string, detail: string): void {
    deps.count(result);
    deps.logger.warn({ deviceId, result, detail }, 'fl update refused');
  }

  async function submit(
    event: UpdateReceived,
    extra: Omit<UpdateExtra, 'metrics'>,
    h: FlUpdateMessage,
  ) {
    const admission = await deps.submit(event, { ...extra, metrics: { ...h.metrics } });
    if (admission.verdict === 'rejected') {
      refuse(admission.reason, event.deviceId, `${event.updateId}: ${admission.detail}`);
    } else {
      deps.count(admission.verdict);
      deps.logger.info(
        {
          deviceId: event.deviceId,
          roundId: event.roundId,
          updateId: event.updateId,
          verdict: admission.verdict,
        },
        'fl update',
      );
    }
    return admission;
  }

  function release(key: string): Pending | undefined {
    const p = pending.get(key);
    if (p) {
      pending.delete(key);
      buffered -= p.sizeBytes;
    }
    return p;
  }

  async function fail(key: string, reason: string): Promise<void> {
    const p = release(key);
    if (!p) return;
    await submit(eventOf(p.deviceId, p.header, null, reason), NO_EXTRA, p.header);
  }

  async function complete(key: string): Promise<void> {
    const p = release(key)!;
    const h = p.header;
    const bytes = new Uint8Array(p.sizeBytes);
    let offset = 0;
    for (const part of p.parts) {
      bytes.set(part!, offset);
      offset += part!.length;
    }
    const malformed = (reason: string) => submit(eventOf(p.deviceId, h, null, reason), NO_EXTRA, h);
    if (offset !== p.sizeBytes)
      return void (await malformed(`${offset} bytes, header says ${p.sizeBytes}`));
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (digest !== p.sha256)
      return void (await malformed('SHA-256 differs from the signed header'));
    const architecture = await deps.architecture(h.model.bundleId);
    if (!architecture)
      return void (await malformed('the base bundle has no training architecture'));
    const content = decodeUpdateContent(bytes, architecture, p.clipNorm);
    if (!content.ok && content.reason === 'non-finite') {
      const event = eventOf(p.deviceId, h, {
        norm: Number.NaN,
        finite: false,
        quantizationErrorBound: 0,
      });
      return void (await submit(event, NO_EXTRA, h));
    }
    if (!content.ok) return void (await malformed(content.detail));
    const { norm, quantizationErrorBound: bound, scale } = content.update;
    let extra: Omit<UpdateExtra, 'metrics'> = { ...NO_EXTRA, norm };
    if (withinClipBound(norm, p.clipNorm, bound)) {
      // Inside the tolerant bound, but never more than clipNorm where it counts.
      extra = { blobId: await deps.blobs.put(bytes), norm, scale };
    }
    await submit(
      eventOf(p.deviceId, h, { norm, finite: true, quantizationErrorBound: bound }),
      extra,
      h,
    );
  }

  return {
    async onHeader(deviceId, h) {
      const round = await deps.round(h.roundId);
      if (!round) return refuse('wrong-round', deviceId, `no round ${h.roundId}`);
      const key = keyOf(deviceId, h.id);
      if (pending.has(key)) return refuse('replayed', deviceId, `update ${h.id} is being received`);
      for (const p of pending.values()) {
        if (p.deviceId === deviceId && p.header.roundId === h.roundId) {
          return refuse('duplicate', deviceId, `update ${p.header.id} is being received`);
        }
      }
      if (!round.seenUpdateIds.includes(h.id) && (await deps.hasUpdate(h.id))) {
        return refuse('replayed', deviceId, `update ${h.id} was recorded in another round`);
      }
      const now = deps.nowMs();
      // The core's ordered checks on the stored round, with a placeholder for the content.
      const probe = eventOf(deviceId, h, { norm: 0, finite: true, quantizationErrorBound: 0 });
      const pre =
        round.status === 'collecting'
          ? admitUpdate(round, probe, now)
          : admitOutsideCollection(round, probe);
      if (h.status === 'failed' || pre.verdict !== 'accepted' || !h.update) {
        return void (await submit(eventOf(deviceId, h, null, 'no update'), NO_EXTRA, h));
      }
      const u = h.update;
      // Before reserving anything: a size the base architecture's update
      // cannot reach is refused, so a selected device cannot hold the buffer
      // budget with a header whose parts never come.
      const architecture = await deps.architecture(h.model.bundleId);
      const most = architecture ? maxUpdateBytes(architecture) : 0;
      if (u.sizeBytes > most) {
        return void (await submit(
          eventOf(
            deviceId,
            h,
            null,
            `${u.sizeBytes} bytes; an update of this model is at most ${most}`,
          ),
          NO_EXTRA,
          h,
        ));
      }
      if (buffered + u.sizeBytes > deps.maxBufferedBytes) {
        return refuse(
          'buffer-full',
          deviceId,
          `${buffered} + ${u.sizeBytes} bytes over ${deps.maxBufferedBytes}`,
        );
      }
      buffered += u.sizeBytes;
      pending.set(key, {
        header: h,
        deviceId,
        sizeBytes: u.sizeBytes,
        sha256: u.sha256,
        partCount: u.partCount,
        deadlineAtMs: round.deadlineAtMs ?? now,
        clipNorm: round.config.clipNorm,
        parts: new Array<Uint8Array | undefined>(u.partCount),
        received: 0,
      });
    },

    async onPart(deviceId, m) {
      const key = keyOf(deviceId, m.updateId);
      const p = pending.get(key);
      if (!p)
        return refuse(
          'unknown-header',
          deviceId,
          `part ${m.index} of unknown update ${m.updateId}`,
        );
      if (deps.nowMs() >= p.deadlineAtMs) {
        release(key);
        return void (await submit(eventOf(deviceId, p.header, null, 'late'), NO_EXTRA, p.header));
      }
      if (m.roundId !== p.header.roundId) return fail(key, `part for round ${m.roundId}`);
      if (m.count !== p.partCount || m.index >= p.partCount) {
        return fail(key, `part ${m.index} of ${m.count}; the header says ${p.partCount} parts`);
      }
      const bytes = fromBase64(m.data);
      const expected =
        m.index < p.partCount - 1
          ? MAX_FL_PART_BYTES
          : p.sizeBytes - (p.partCount - 1) * MAX_FL_PART_BYTES;
      if (bytes.length !== expected) {
        return fail(key, `part ${m.index} holds ${bytes.length} bytes, expected ${expected}`);
      }
      const seen = p.parts[m.index];
      if (seen) {
        // A QoS 1 redelivery is harmless; different bytes under the same index are not.
        if (Buffer.compare(seen, bytes) === 0) return;
        return fail(key, `part ${m.index} sent twice with different bytes`);
      }
      p.parts[m.index] = bytes;
      p.received++;
      if (p.received === p.partCount) await complete(key);
    },

    async expire() {
      const now = deps.nowMs();
      for (const [key, p] of [...pending]) {
        if (now < p.deadlineAtMs) continue;
        release(key);
        await submit(eventOf(p.deviceId, p.header, null, 'late'), NO_EXTRA, p.header);
      }
    },

    bufferedBytes: () => buffered,
  };
}

/**
 * The largest tensor set an update of `architecture` can be: the clear header
 * and the body's raw-deflate worst case (zlib's deflateBound for raw deflate:
 * n + n/4096 + n/16384 + n/2^25 + 13, rounded up here).
 */
export function maxUpdateBytes(architecture: DenseShape): number {
  const body = maxTensorSetBodyBytes(
    denseTensorShapes(architecture).length,
    denseParameterCount(architecture),
  );
  return TENSOR_SET_HEADER_BYTES + body + (body >> 12) + (body >> 14) + (body >> 25) + 64;
}
