/**
 * Base64 both ways on its two paths (Node's Buffer, and the portable code
 * browsers run): the same text for the same bytes, the same bytes back, and
 * the same refusals of anything but canonical standard base64.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isFleetError } from '../errors.ts';
import { fromBase64, toBase64, type Base64Backend } from './bytes.ts';

const BACKENDS: Base64Backend[] = ['node', 'portable'];

describe('base64', () => {
  it('encodes and decodes the same on both paths, also for views into larger buffers', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(8),
        fc.nat(8),
        (bytes, before, after) => {
          const backing = new Uint8Array(before + bytes.length + after).fill(0xee);
          backing.set(bytes, before);
          const view = backing.subarray(before, before + bytes.length);
          const text = toBase64(view, 'portable');
          assert.equal(toBase64(view, 'node'), text);
          assert.equal(toBase64(view), text);
          for (const backend of BACKENDS) {
            const back = fromBase64(text, backend);
            assert.deepEqual(back, bytes);
            assert.equal(back.constructor, Uint8Array, 'a plain Uint8Array, not a Buffer');
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('matches known vectors (RFC 4648 section 10)', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'Zg=='],
      ['fo', 'Zm8='],
      ['foo', 'Zm9v'],
      ['foob', 'Zm9vYg=='],
      ['fooba', 'Zm9vYmE='],
      ['foobar', 'Zm9vYmFy'],
    ];
    for (const [plain, encoded] of vectors) {
      const bytes = new TextEncoder().encode(plain);
      for (const backend of BACKENDS) {
        assert.equal(toBase64(bytes, backend), encoded);
        assert.deepEqual(fromBase64(encoded, backend), bytes);
      }
    }
  });

  it('refuses anything but canonical standard base64, on both paths', () => {
    const refused = [
      'Zg', // no padding
      'Zg=', // short padding
      'Zh==', // non-zero padding bits: a second encoding of 'f'
      'Zm9=', // non-zero padding bits
      'Zm9v\n', // whitespace
      ' Zm9v',
      'Zm-v', // url-safe alphabet
      'Zm_v',
      'Zg==Zg==', // padding inside
      '====',
    ];
    for (const text of refused) {
      for (const backend of BACKENDS) {
        assert.throws(
          () => fromBase64(text, backend),
          (error: unknown) => isFleetError(error) && error.code === 'MALFORMED',
          `${JSON.stringify(text)} (${backend})`,
        );
      }
    }
  });
});
