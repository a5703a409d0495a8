/**
 * A streaming check of MQTT 3.1.1 packet sizes, run on the raw bytes of one
 * connection before the MQTT parser sees them (THREATS 31, 33).
 *
 * Why our own: aedes 1.x has no packet-size option (its docs suggest pairing
 * `maxInflightInbound` "with a transport-level frame limit"), and mqtt-packet's
 * parser appends bytes to its buffer list until the whole packet is there, so
 * a peer announcing a 256 MiB PUBLISH is buffered until it is complete. This
 * guard reads only each fixed header: it never holds more than the few bytes
 * of a Remaining Length, and it refuses a packet as soon as its header says it
 * is too large, before any of its body is handed on.
 *
 * Fixed header ([MQTT-2.2]): one byte of type and flags, then the Remaining
 * Length, a varint of 1 to 4 bytes (7 bits each, high bit = "more follows",
 * [MQTT-2.2.3]). A packet may span chunks, a chunk may hold several packets,
 * and a header may be split anywhere, so the guard keeps its position between
 * chunks.
 */

/** Largest Remaining Length the 4-byte varint can carry (268,435,455). */
export const MAX_REMAINING_LENGTH = 0x0fffffff;
const MAX_LENGTH_BYTES = 4;

export type PacketGuardFailure = {
  ok: false;
  reason: 'oversize' | 'malformed-length';
  message: string;
};
export type PacketGuardVerdict = { ok: true } | PacketGuardFailure;

export interface PacketSizeGuard {
  /**
   * Reads the next chunk of the stream. Once a verdict is not ok, every later
   * call returns it again: the connection must be closed, not resynchronised.
   */
  push(chunk: Uint8Array): PacketGuardVerdict;
}

type State =
  | { step: 'type' }
  | { step: 'length'; value: number; bytes: number }
  | { step: 'body'; left: number };

/**
 * A guard for one connection. `maxPacketSizeBytes` counts the whole packet:
 * fixed header, variable header and payload (as MQTT 5's Maximum Packet Size).
 *
 * @example
 *   const guard = createPacketSizeGuard({ maxPacketSizeBytes: 262_144 });
 *   socket.on('data', (chunk) => { if (!guard.push(chunk).ok) socket.destroy(); });
 */
export function createPacketSizeGuard(options: { maxPacketSizeBytes: number }): PacketSizeGuard {
  const max = options.maxPacketSizeBytes;
  if (!Number.isInteger(max) || max < 2) {
    throw new RangeError(`maxPacketSizeBytes must be an integer of at least 2, not ${max}`);
  }
  let state: State = { step: 'type' };
  let failed: PacketGuardFailure | null = null;

  /** The state after one Remaining Length byte, or why the packet is refused. */
  function afterLengthByte(byte: number, at: { value: number; bytes: number }) {
    const value = at.value + (byte & 0x7f) * 128 ** at.bytes;
    const bytes = at.bytes + 1;
    if (byte & 0x80) {
      if (bytes < MAX_LENGTH_BYTES) return { step: 'length', value, bytes } as const;
      // [MQTT-2.2.3]: four bytes at most; a continuation bit on the fourth is malformed.
      return failure('malformed-length', 'Remaining Length longer than 4 bytes [MQTT-2.2.3]');
    }
    const packetBytes = 1 + bytes + value;
    if (packetBytes > max) {
      return failure('oversize', `packet of ${packetBytes} bytes exceeds the limit of ${max}`);
    }
    return value === 0 ? ({ step: 'type' } as const) : ({ step: 'body', left: value } as const);
  }

  return {
    push(chunk) {
      if (failed) return failed;
      let i = 0;
      while (i < chunk.length) {
        if (state.step === 'body') {
          const skip = Math.min(state.left, chunk.length - i);
          i += skip;
          state =
            state.left === skip ? { step: 'type' } : { step: 'body', left: state.left - skip };
        } else if (state.step === 'type') {
          i += 1; // type and flags: the MQTT parser checks those [MQTT-2.2.2-2]
          state = { step: 'length', value: 0, bytes: 0 };
        } else {
          const next = afterLengthByte(chunk[i] as number, state);
          i += 1;
          if ('ok' in next) return (failed = next);
          state = next;
        }
      }
      return { ok: true };
    },
  };
}

function failure(reason: PacketGuardFailure['reason'], message: string): PacketGuardFailure {
  return { ok: false, reason, message };
}
