/**
 * FTNS v1: round trips (float32 exact, int8 within scale / 2), per-channel
 * scales, the bundle factory's exact int8 weights, and refusals of every
 * malformed input: truncations, trailing bytes, corruption, compression
 * bombs, NaN/Inf, bad names and dims, caps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';
import { isFleetError } from '../errors.ts';
import { deflateRaw } from './bounded-deflate.ts';
import { writeBody, type StoredTensor } from './tensor-set-body.ts';
import {
  decodeTensorSet,
  encodeQuantizedTensorSet,
  encodeTensorSet,
  MAX_TENSOR_SET_BODY_BYTES,
  MAX_TENSOR_SET_TENSORS,
  type NamedTensor,
} from './tensor-set.ts';

const tensor = (name: string, dims: number[], f: (i: number) => number): NamedTensor => ({
  name,
  dims,
  values: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => f(i)),
});

/** A small dense model's tensors: a kernel [6, 4] and a bias [4]. */
const sample = (): NamedTensor[] => [
  tensor('dense_0/kernel', [6, 4], (i) => Math.sin(i * 1.7) * (1 + (i % 4))),
  tensor('dense_0/bias', [4], (i) => i / 10 - 0.15),
];

/** Header + deflated body, for crafting sets the encoder would refuse to write. */
function frame(count: number, body: Uint8Array, bodyLength = body.length): Uint8Array {
  const compressed = deflateRaw(body);
  const out = new Uint8Array(12 + compressed.length);
  const view = new DataView(out.buffer);
  out.set([0x46, 0x54, 0x4e, 0x53, 1, 0]);
  view.setUint16(6, count);
  view.setUint32(8, bodyLength);
  out.set(compressed, 12);
  return out;
}
const crafted = (tensors: StoredTensor[]) => frame(tensors.length, writeBody(tensors));
const float = (name: string, dims: number[], values: number[]): StoredTensor => ({
  name,
  dims,
  dtype: 'float32',
  values: Float32Array.from(values),
});

/** Largest |x - x'| allowed for scale s: s / 2 plus float32 rounding of q x s. */
const bound = (s: number) => (s / 2) * (1 + 2 ** -18);

describe('FTNS tensor sets', () => {
  it('round-trips float32 exactly, -0, subnormals and extremes included', () => {
    const tensors = [
      ...sample(),
      {
        name: 'x:edge.case-1',
        dims: [2, 3],
        values: Float32Array.from([-0, 1e-45, -3.4e38, 3.4e38, 1, -1]),
      },
    ];
    const decoded = decodeTensorSet(encodeTensorSet(tensors, { encoding: 'float32' }));
    assert.equal(decoded.encoding, 'float32');
    assert.deepEqual(decoded.tensors, tensors);
    assert.ok(Object.is(decoded.tensors[2]!.values[0], -0));
    assert.deepEqual(
      decoded.quantization.map((q) => [q.name, q.dtype, q.scales.length]),
      tensors.map((t) => [t.name, 'float32', 0]),
    );
  });

  it('round-trips int8 within scale / 2 per element, per tensor and per channel (property)', () => {
    const tensorArb = fc
      .array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 })
      .chain((dims) =>
        fc.record({
          dims: fc.constant(dims),
          values: fc.array(
            fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
            {
              minLength: dims.reduce((a, b) => a * b, 1),
              maxLength: dims.reduce((a, b) => a * b, 1),
            },
          ),
        }),
      );
    fc.assert(
      fc.property(
        fc.array(tensorArb, { minLength: 1, maxLength: 4 }),
        fc.constantFrom('tensor' as const, 'channel' as const),
        (specs, scales) => {
          const tensors = specs.map((s, i) => ({
            name: `t${i}`,
            dims: s.dims,
            values: Float32Array.from(s.values),
          }));
          const decoded = decodeTensorSet(encodeTensorSet(tensors, { encoding: 'int8', scales }));
          assert.equal(decoded.encoding, 'int8');
          tensors.forEach((t, k) => {
            const { scales: s } = decoded.quantization[k]!;
            assert.equal(s.length, scales === 'tensor' ? 1 : t.dims[t.dims.length - 1]);
            assert.deepEqual(decoded.tensors[k]!.dims, t.dims);
            t.values.forEach((x, i) => {
              const scale = s[i % s.length]!;
              assert.ok(
                Math.abs(x - decoded.tensors[k]!.values[i]!) <= bound(scale),
                `${x} at scale ${scale}`,
              );
            });
          });
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });

  it('gives each last-axis channel its own scale; an all-zero channel has scale 1 and stays exact', () => {
    // channel 0 around 100, channel 1 around 0.01, channel 2 all zero
    const kernel = tensor('k', [4, 3], (i) => (i % 3 === 0 ? 100 - i : i % 3 === 1 ? 0.01 * i : 0));
    const perChannel = decodeTensorSet(
      encodeTensorSet([kernel], { encoding: 'int8', scales: 'channel' }),
    );
    const perTensor = decodeTensorSet(encodeTensorSet([kernel], { encoding: 'int8' }));
    const scales = perChannel.quantization[0]!.scales;
    assert.deepEqual([...scales], [Math.fround(100 / 127), Math.fround(0.1 / 127), 1]);
    assert.equal(perTensor.quantization[0]!.scales.length, 1);
    const small = (d: typeof perChannel) => [1, 4, 7, 10].map((i) => d.tensors[0]!.values[i]!);
    // per tensor, the small channel rounds to 0; per channel, it survives within its own scale
    assert.deepEqual(small(perTensor), [0, 0, 0, 0]);
    small(perChannel).forEach((v, j) =>
      assert.ok(Math.abs(v - kernel.values[1 + 3 * j]!) <= bound(scales[1]!)),
    );
    assert.deepEqual(
      [2, 5, 8, 11].map((i) => perChannel.tensors[0]!.values[i]),
      [0, 0, 0, 0],
    );
  });

  it("stores the factory's exact int8 per-channel weights next to float32 biases (mixed)", () => {
    const q = Int8Array.from([127, -3, 0, -127, 127, 0]); // dims [2, 3]: channels 0, 1 and an all-zero channel 2
    const scales = Float32Array.from([0.5, 0.25, 1]);
    const bias = Float32Array.from([0.1, -0.2, 0.3]);
    const bytes = encodeQuantizedTensorSet([
      { name: 'dense_0/kernel', dims: [2, 3], dtype: 'int8', values: q, scales },
      { name: 'dense_0/bias', dims: [3], dtype: 'float32', values: bias },
    ]);
    const decoded = decodeTensorSet(bytes);
    assert.equal(decoded.encoding, 'mixed');
    assert.deepEqual([...decoded.tensors[0]!.values], [63.5, -0.75, 0, -63.5, 31.75, 0]);
    assert.deepEqual(decoded.tensors[1]!.values, bias);
    assert.deepEqual(decoded.quantization[0]!.scales, scales);
  });

  it('refuses non-canonical int8 on encode and decode: max |q| below 127, -128, a zero channel not at scale 1', () => {
    const int8 = (values: number[], scales: number[]): StoredTensor => ({
      name: 'k',
      dims: [values.length],
      dtype: 'int8',
      values: Int8Array.from(values),
      scales: Float32Array.from(scales),
    });
    const cases: [StoredTensor, string, RegExp][] = [
      [int8([1, 0], [1000]), 'MALFORMED', /tensor k has scale 1000 and max \|q\| 1/],
      [int8([-128, 127], [1]), 'MALFORMED', /-128/],
      [int8([0, 0], [0]), 'MALFORMED', /all zero, so its scale is 1, not 0/],
      [int8([127, 1], [0]), 'MALFORMED', /scale 0/],
      [int8([127, 1], [-1]), 'MALFORMED', /scale -1/],
      [int8([127, 1], [NaN]), 'NON_FINITE', /scale NaN/],
      [int8([127, 1], [Infinity]), 'NON_FINITE', /scale Infinity/],
      [int8([127, 1], [1, 1, 1]), 'MALFORMED', /3 scales/],
    ];
    for (const [t, code, message] of cases) {
      refused(() => encodeQuantizedTensorSet([t]), code, message);
      refused(() => decodeTensorSet(crafted([t])), code, message);
    }
  });

  it('refuses NaN and Inf on encode (float32 and int8) and on decode', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const tensors = [...sample(), tensor('bad', [3], (i) => (i === 1 ? bad : 1))];
      for (const encoding of ['float32', 'int8'] as const) {
        refused(
          () => encodeTensorSet(tensors, { encoding }),
          'NON_FINITE',
          /tensor bad holds .* at element 1/,
        );
      }
      refused(
        () => decodeTensorSet(crafted([float('bad', [2], [0, bad])])),
        'NON_FINITE',
        /tensor bad/,
      );
    }
  });

  it('refuses duplicate names, bad names, bad dims and value counts, on encode and decode', () => {
    const [k, b] = sample() as [NamedTensor, NamedTensor];
    const encodeCases: [NamedTensor[], RegExp][] = [
      [[k, { ...b, name: k.name }], /tensor dense_0\/kernel is listed twice/],
      [[{ ...b, name: '' }], /a name is 1-128/],
      [[{ ...b, name: 'has space' }], /a name is 1-128/],
      [[{ ...b, name: 'x'.repeat(129) }], /a name is 1-128/],
      [[{ ...b, name: 'é' }], /a name is 1-128/],
      [[{ ...b, dims: [] }], /rank 0/],
      [[{ ...b, dims: [1, 1, 1, 1, 4] }], /rank 5/],
      [[{ ...b, dims: [4, 0] }], /integers >= 1/],
      [[{ ...b, dims: [2.5] }], /integers >= 1/],
      [[{ ...b, dims: [5] }], /dims \[5\] \(5 elements\) but 4 values/],
      [[], /holds no tensor/],
    ];
    for (const [tensors, message] of encodeCases) {
      refused(() => encodeTensorSet(tensors, { encoding: 'float32' }), 'MALFORMED', message);
    }
    const decodeCases: [Uint8Array, RegExp][] = [
      [crafted([float('a', [1], [1]), float('a', [1], [2])]), /tensor a is listed twice/],
      [crafted([float('a b', [1], [1])]), /a name is 1-128/],
      [crafted([float('a', [1, 1, 1, 1, 1], [1])]), /rank 5/],
      [crafted([float('a', [0], [])]), /dimension of 0/],
      [crafted([float('a', [2], [1])]), /ends inside its values of a/],
      [frame(2, writeBody([float('a', [1], [1])])), /ends inside its name length of tensor 1/],
      [
        frame(1, writeBody([float('a', [1], [1]), float('b', [1], [1])])),
        /bytes after its last field/,
      ],
      [frame(0, new Uint8Array(0)), /holds no tensor/],
    ];
    for (const [bytes, message] of decodeCases)
      refused(() => decodeTensorSet(bytes), 'MALFORMED', message);
  });

  it('refuses every truncation of a valid encoding, and bytes appended to one', () => {
    const sets = [
      encodeTensorSet(sample(), { encoding: 'float32' }),
      encodeTensorSet(sample(), { encoding: 'int8', scales: 'channel' }),
      encodeTensorSet([tensor('big', [300, 40], (i) => Math.cos(i))], { encoding: 'int8' }),
    ];
    for (const bytes of sets) {
      decodeTensorSet(bytes);
      for (let n = 0; n < bytes.length; n++)
        refused(() => decodeTensorSet(bytes.subarray(0, n)), 'MALFORMED');
      for (const extra of [[0], [1, 2, 3]]) {
        const longer = Uint8Array.from([...bytes, ...extra]);
        refused(() => decodeTensorSet(longer), 'MALFORMED', /bytes after its deflate stream/);
      }
    }
  });

  it('throws only FleetErrors on seeded corruption, of the bytes and of the body before deflate', () => {
    const valid = [
      encodeTensorSet(sample(), { encoding: 'int8', scales: 'channel' }),
      encodeTensorSet(sample(), { encoding: 'float32' }),
    ];
    const body = writeBody([
      float('a', [2, 2], [1, 2, 3, 4]),
      {
        name: 'b',
        dims: [3],
        dtype: 'int8',
        values: Int8Array.from([127, 0, -5]),
        scales: Float32Array.from([0.5]),
      },
    ]);
    fc.assert(
      fc.property(
        fc.nat(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.boolean(),
        (which, edits, inBody) => {
          const bytes = (inBody ? body : valid[which % valid.length]!).slice();
          for (const [at, value] of edits) bytes[at % bytes.length] = value;
          try {
            decodeTensorSet(inBody ? frame(2, bytes) : bytes);
          } catch (error) {
            assert.ok(isFleetError(error), `not a FleetError: ${String(error)}`);
            assert.ok(['MALFORMED', 'TOO_LARGE', 'NON_FINITE'].includes(error.code), error.message);
          }
        },
      ),
      { seed: 20261126, numRuns: 2000 },
    );
  });

  it('stops a compression bomb at the declared body length', () => {
    const body = writeBody([float('a', [1], [1])]);
    const bomb = new Uint8Array(8 * 1024 * 1024); // 8 MiB of zeros after a valid tensor
    bomb.set(body);
    refused(
      () => decodeTensorSet(frame(1, bomb, body.length)),
      'TOO_LARGE',
      /inflates past the \d+ bytes its header declares/,
    );
    refused(
      () => decodeTensorSet(frame(1, body, MAX_TENSOR_SET_BODY_BYTES + 1)),
      'TOO_LARGE',
      /declares a body of/,
    );
    refused(
      () => decodeTensorSet(frame(1, body, 1_000_000)),
      'MALFORMED',
      /more than its \d+ compressed bytes can hold/,
    );
    refused(
      () => decodeTensorSet(frame(1, body, body.length + 1)),
      'MALFORMED',
      /inflates to \d+ bytes, its header declares/,
    );
  });

  it('holds a set to the tensor and element caps, and to tighter receiver limits', () => {
    const many = Array.from({ length: MAX_TENSOR_SET_TENSORS + 1 }, (_, i) =>
      tensor(`t${i}`, [1], () => 1),
    );
    refused(
      () => encodeTensorSet(many, { encoding: 'float32' }),
      'TOO_LARGE',
      /257 tensors, the cap is 256/,
    );
    refused(
      () => decodeTensorSet(frame(257, new Uint8Array(1))),
      'TOO_LARGE',
      /257 tensors, the cap is 256/,
    );
    refused(
      () =>
        encodeTensorSet([{ name: 'x', dims: [4096, 4097], values: new Float32Array(1) }], {
          encoding: 'int8',
        }),
      'TOO_LARGE',
    );
    const bytes = encodeTensorSet(sample(), { encoding: 'int8' }); // 28 elements in 2 tensors
    assert.equal(decodeTensorSet(bytes, { maxElements: 28, maxTensors: 2 }).tensors.length, 2);
    refused(() => decodeTensorSet(bytes, { maxElements: 27 }), 'TOO_LARGE');
    refused(
      () => decodeTensorSet(bytes, { maxTensors: 1 }),
      'TOO_LARGE',
      /2 tensors, the cap is 1/,
    );
  });

  it('refuses bad magic, version and reserved byte', () => {
    const bytes = encodeTensorSet(sample(), { encoding: 'float32' });
    const at = (i: number, v: number) => Uint8Array.from(bytes, (b, j) => (j === i ? v : b));
    refused(() => decodeTensorSet(at(0, 0x47)), 'MALFORMED', /bad magic/);
    refused(() => decodeTensorSet(at(4, 2)), 'MALFORMED', /format version 2; this code reads 1/);
    refused(() => decodeTensorSet(at(5, 1)), 'MALFORMED', /reserved byte 1/);
  });
});
