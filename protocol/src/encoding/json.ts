/**
 * JSON in and out of bytes, with the caps and canonical form the signed formats
 * need. Canonical bytes are RFC 8785 (JCS) through the `canonicalize` package.
 */
import canonicalize from 'canonicalize';
import { FleetError } from '../errors.ts';
import { fromUtf8, utf8 } from './bytes.ts';

/** RFC 8785 canonical JSON bytes; NaN, Infinity and lone surrogates are refused. */
export function canonicalJson(value: unknown): Uint8Array {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (cause) {
    throw new FleetError('MALFORMED', 'value has no canonical JSON form', { cause });
  }
  if (text === undefined) throw new FleetError('MALFORMED', 'value has no JSON form');
  return utf8(text);
}

/** Parses UTF-8 JSON no longer than `maxBytes`; `what` names the input in errors. */
export function parseJsonBytes(bytes: Uint8Array, maxBytes: number, what: string): unknown {
  if (bytes.length > maxBytes) {
    throw new FleetError('TOO_LARGE', `${what} is ${bytes.length} bytes, the cap is ${maxBytes}`);
  }
  try {
    return JSON.parse(fromUtf8(bytes)) as unknown;
  } catch (cause) {
    throw new FleetError('MALFORMED', `${what} is not valid JSON`, { cause });
  }
}
