/**
 * Byte helpers the wire formats need: UTF-8, hex and base64, and equality.
 * They run without Node's Buffer (this package must also run in a browser);
 * base64 uses Buffer where there is one (Node), because every signed message
 * is base64 both ways: the portable code (String.fromCharCode and btoa, atob
 * and a loop) was 2-3% of the control plane's and of a simulated fleet's CPU
 * in a rollout (profiles of 3,000 agents). Both paths are tested equal.
 */
import { FleetError } from '../errors.ts';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** Decodes UTF-8, refusing invalid sequences instead of inserting U+FFFD. */
export function fromUtf8(bytes: Uint8Array): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch (cause) {
    throw new FleetError('MALFORMED', 'bytes are not valid UTF-8', { cause });
  }
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

const HEX = /^(?:[0-9a-f]{2})*$/;

export function fromHex(hex: string): Uint8Array {
  if (!HEX.test(hex)) throw new FleetError('MALFORMED', 'not lowercase hex of whole bytes');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

interface NodeBufferLike extends Uint8Array {
  toString(encoding?: 'base64'): string;
}

interface NodeBufferClass {
  from(buffer: ArrayBufferLike, byteOffset: number, length: number): NodeBufferLike;
  from(text: string, encoding: 'base64'): NodeBufferLike;
}

/** Node's Buffer, reached through the global so that browsers (which have none) load this module. */
const NodeBuffer = (globalThis as { Buffer?: NodeBufferClass }).Buffer;

export type Base64Backend = 'node' | 'portable';

/** Standard base64 with padding. `backend` is for tests; callers leave it to use Node's Buffer where there is one. */
export function toBase64(bytes: Uint8Array, backend?: Base64Backend): string {
  if (NodeBuffer && backend !== 'portable') {
    return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  }
  let binary = '';
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/** Standard base64 with padding; anything else is MALFORMED (no silent skipping). */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The bytes of canonical base64 (a fresh Uint8Array, never a Buffer); anything else is MALFORMED. */
export function fromBase64(text: string, backend?: Base64Backend): Uint8Array {
  if (!BASE64.test(text)) throw new FleetError('MALFORMED', 'not canonical base64');
  let out: Uint8Array;
  if (NodeBuffer && backend !== 'portable') {
    // The pattern above leaves Buffer's lenient decoder nothing to skip.
    out = new Uint8Array(NodeBuffer.from(text, 'base64'));
  } else {
    const binary = atob(text);
    out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  }
  // Non-zero padding bits give a second encoding of the same bytes: refuse it.
  if (toBase64(out, backend) !== text) throw new FleetError('MALFORMED', 'not canonical base64');
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function concatBytes(...chunks: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
