/**
 * The packet-size guard on hand-made byte streams (THREATS 31, 33): packets
 * split anywhere across chunks, several packets per chunk, bodies full of
 * bytes that would look like headers, and the 4-byte Remaining Length limit.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPacketSizeGuard, type PacketGuardVerdict } from './packet-size-guard.ts';

/** A fixed header: type/flags byte, then the Remaining Length varint [MQTT-2.2.3]. */
function header(typeByte: number, remaining: number): number[] {
  const bytes = [typeByte];
  do {
    let byte = remaining % 128;
    remaining = Math.floor(remaining / 128);
    if (remaining > 0) byte |= 0x80;
    bytes.push(byte);
  } while (remaining > 0);
  return bytes;
}

/** A whole packet whose body is `fill` repeated: `bodyBytes` long. */
function packet(typeByte: number, bodyBytes: number, fill = 0xff): Uint8Array {
  return Uint8Array.from([
    ...header(typeByte, bodyBytes),
    ...new Array<number>(bodyBytes).fill(fill),
  ]);
}

const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

/** Feeds `stream` cut at `cuts`; returns the verdict after each chunk. */
function feed(max: number, stream: Uint8Array, cuts: number[]): PacketGuardVerdict[] {
  const guard = createPacketSizeGuard({ maxPacketSizeBytes: max });
  const bounds = [0, ...cuts, stream.length];
  return bounds.slice(1).map((end, i) => guard.push(stream.subarray(bounds[i], end)));
}

const PINGREQ = Uint8Array.from([0xc0, 0x00]);
const PUBLISH = 0x30;
const MAX = 1000;

describe('packet-size guard', () => {
  it('passes a packet of exactly the limit and refuses one byte more (THREATS 31)', () => {
    // 1 type byte + 2 length bytes (997 > 127) + 997 body = 1000
    assert.deepEqual(feed(MAX, packet(PUBLISH, 997), []), [{ ok: true }]);
    const [verdict] = feed(MAX, packet(PUBLISH, 998), []);
    assert.equal(verdict?.ok, false);
    assert.equal(verdict?.ok === false && verdict.reason, 'oversize');
  });

  it('reads several packets in one chunk, and refuses the oversize one among them', () => {
    const good = concat(PINGREQ, packet(PUBLISH, 200), PINGREQ, packet(0x82, 10));
    assert.deepEqual(feed(MAX, good, []), [{ ok: true }]);
    const [verdict] = feed(MAX, concat(good, packet(PUBLISH, 5000), PINGREQ), []);
    assert.equal(verdict?.ok === false && verdict.reason, 'oversize');
  });

  it('keeps its place when a stream is cut at every position, or fed byte by byte', () => {
    // 0xff bodies: read as a header, any of them would be a malformed length.
    const stream = concat(packet(PUBLISH, 300), PINGREQ, packet(PUBLISH, 127), packet(0x32, 128));
    for (let cut = 1; cut < stream.length; cut += 1) {
      assert.deepEqual(feed(MAX, stream, [cut]), [{ ok: true }, { ok: true }], `cut at ${cut}`);
    }
    const everyByte = [...stream.keys()].slice(1);
    assert.ok(feed(MAX, stream, everyByte).every((v) => v.ok));
  });

  it('refuses an oversize packet as soon as its split header is complete, before its body', () => {
    // Remaining Length 300,000 takes 3 bytes: cut after the first of them.
    const stream = concat(PINGREQ, packet(PUBLISH, 300_000).subarray(0, 4));
    const verdicts = feed(MAX, stream, [PINGREQ.length + 2]);
    assert.equal(verdicts[0]?.ok, true);
    assert.equal(verdicts[1]?.ok === false && verdicts[1].reason, 'oversize');
  });

  it('closes on a Remaining Length longer than 4 bytes [MQTT-2.2.3]', () => {
    const [malformed] = feed(MAX, Uint8Array.from([PUBLISH, 0xff, 0xff, 0xff, 0xff, 0x01]), []);
    assert.equal(malformed?.ok === false && malformed.reason, 'malformed-length');
    // The largest 4-byte value is well formed, only too large here.
    const [largest] = feed(MAX, Uint8Array.from([PUBLISH, 0xff, 0xff, 0xff, 0x7f]), []);
    assert.equal(largest?.ok === false && largest.reason, 'oversize');
  });

  it('stays refused once refused: a stream cannot be resynchronised', () => {
    const guard = createPacketSizeGuard({ maxPacketSizeBytes: MAX });
    assert.equal(guard.push(packet(PUBLISH, 2000).subarray(0, 3)).ok, false);
    assert.equal(guard.push(PINGREQ).ok, false);
  });

  it('refuses a limit that cannot hold a packet', () => {
    assert.throws(() => createPacketSizeGuard({ maxPacketSizeBytes: 1 }), RangeError);
    assert.throws(() => createPacketSizeGuard({ maxPacketSizeBytes: Number.NaN }), RangeError);
  });
});
