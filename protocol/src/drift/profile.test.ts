import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '../errors.ts';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';
import type { ManifestDrift } from '../bundle/manifest.ts';
import {
  INPUT_SIZE,
  sampleSpec,
  specWithoutPca,
  syntheticSamples,
} from './__fixtures__/profile-fixtures.ts';
import { fitPca, type PcaBasis } from './pca.ts';
import {
  decodeDriftProfile,
  DRIFT_PROFILE_MAX_PCA_FLOATS,
  encodeDriftProfile,
  type DriftProfile,
} from './profile.ts';
import { createSeededRandom } from './random.ts';
import { createCategoricalSignal, createNumericSignal } from './signal-sketch.ts';
import { buildBaseline } from './signals.ts';

const samples = syntheticSamples(400, 2);
const basis = fitPca(
  samples.map((s) => s.input),
  INPUT_SIZE,
  { components: 2 },
).basis;

function profileOf(spec: ManifestDrift, pca: PcaBasis | null, k = 16): DriftProfile {
  return {
    pca,
    baselines: buildBaseline(spec, pca, samples, { k, random: createSeededRandom(1) }),
  };
}

const full = encodeDriftProfile(profileOf(sampleSpec(), basis));
const small = encodeDriftProfile(profileOf(specWithoutPca(), null));

/** The PCA header starts at 8; the mean at 16; component r at 16 + 4·INPUT_SIZE·(r + 1). */
const componentOffset = (r: number) => 16 + 4 * INPUT_SIZE * (r + 1);

function withBasis(change: (pca: PcaBasis) => void): Uint8Array {
  const pca: PcaBasis = {
    inputSize: basis.inputSize,
    mean: basis.mean.slice(),
    components: basis.components.map((c) => c.slice()),
  };
  change(pca);
  return encodeDriftProfile({ pca, baselines: profileOf(sampleSpec(), basis).baselines });
}

describe('drift profile', () => {
  it('round-trips with and without a PCA basis, bit for bit', () => {
    for (const [bytes, spec] of [
      [full, sampleSpec()],
      [small, specWithoutPca()],
    ] as const) {
      const profile = decodeDriftProfile(bytes, spec);
      assert.deepEqual(
        [...profile.baselines.keys()],
        spec.signals.map((s) => s.name),
      );
      assert.deepEqual(encodeDriftProfile(profile), bytes);
    }
    const decoded = decodeDriftProfile(full, sampleSpec());
    assert.deepEqual(decoded.pca, basis);
    assert.equal(decodeDriftProfile(small, specWithoutPca()).pca, null);
    const confidence = decoded.baselines.get('confidence')!;
    assert.equal(confidence.kind, 'numeric');
    assert.equal(confidence.kind === 'numeric' && confidence.kll.n, samples.length);
  });

  it('refuses every truncation, trailing bytes, a bad header and oversize input', () => {
    for (const [bytes, spec] of [
      [full, sampleSpec()],
      [small, specWithoutPca()],
    ] as const) {
      for (let length = 0; length < bytes.length; length++) {
        refused(() => decodeDriftProfile(bytes.subarray(0, length), spec), 'TRUNCATED');
      }
      refused(() => decodeDriftProfile(Uint8Array.from([...bytes, 0]), spec), 'TRAILING_DATA');
      refused(() => decodeDriftProfile(bytes, spec, { maxBytes: bytes.length - 1 }), 'TOO_LARGE');
    }
    const patched = (offset: number, value: number) => {
      const bytes = full.slice();
      bytes[offset] = value;
      return bytes;
    };
    const spec = sampleSpec();
    refused(() => decodeDriftProfile(patched(0, 0x47), spec), 'MALFORMED', /bad magic/);
    refused(() => decodeDriftProfile(patched(4, 2), spec), 'MALFORMED', /format version 2/);
    refused(() => decodeDriftProfile(patched(5, 3), spec), 'MALFORMED', /unknown flags 3/);
    refused(() => decodeDriftProfile(patched(7, 0), spec), 'MALFORMED', /0 signals/);
    refused(() => decodeDriftProfile(patched(7, 65), spec), 'MALFORMED', /65 signals/);
    refused(() => decodeDriftProfile(patched(15, 1), spec), 'MALFORMED', /reserved bytes/);
    refused(() => decodeDriftProfile(patched(13, 13), spec), 'MALFORMED', /13 components over 12/);
    // 65,536 inputs x 64 components: over the float cap, refused before the floats are read
    const huge = full.slice();
    new DataView(huge.buffer).setUint32(8, 65_536);
    new DataView(huge.buffer).setUint16(12, DRIFT_PROFILE_MAX_PCA_FLOATS / 65_536);
    refused(() => decodeDriftProfile(huge, spec), 'TOO_LARGE', /floats/);
  });

  it('fails only with FleetErrors under random corruption (seeded fuzz)', () => {
    const random = createSeededRandom(21);
    const cases = [
      [full, sampleSpec()],
      [small, specWithoutPca()],
    ] as const;
    let accepted = 0;
    for (let round = 0; round < 3000; round++) {
      const [original, spec] = cases[round % 2]!;
      const bytes = original.slice();
      const flips = 1 + Math.floor(random() * 3);
      for (let f = 0; f < flips; f++) {
        bytes[Math.floor(random() * bytes.length)]! ^= 1 << Math.floor(random() * 8);
      }
      try {
        const profile = decodeDriftProfile(bytes, spec);
        assert.deepEqual(encodeDriftProfile(profile), bytes); // accepted: then whole and exact
        accepted++;
      } catch (e) {
        assert.ok(isFleetError(e), String(e));
      }
    }
    assert.ok(accepted < 3000);
  });

  it('refuses a basis that is not finite or not orthonormal', () => {
    const spec = sampleSpec();
    /** `full` with the float32 at `offset` replaced by change(old). */
    const patchFloat = (offset: number, change: (old: number) => number) => {
      const bytes = full.slice();
      const view = new DataView(bytes.buffer);
      view.setFloat32(offset, change(view.getFloat32(offset)));
      return bytes;
    };
    refused(
      () =>
        decodeDriftProfile(
          patchFloat(16 + 4 * 4, () => NaN),
          spec,
        ),
      'MALFORMED',
      /PCA mean holds NaN at 4/,
    );
    refused(
      () =>
        decodeDriftProfile(
          patchFloat(componentOffset(0) + 8, () => Infinity),
          spec,
        ),
      'MALFORMED',
      /component 0 holds Infinity at 2/,
    );
    let stretched = full;
    for (let i = 0; i < INPUT_SIZE; i++) {
      const offset = componentOffset(1) + 4 * i;
      const view = new DataView(stretched.buffer);
      stretched = stretched.slice();
      new DataView(stretched.buffer).setFloat32(offset, 1.01 * view.getFloat32(offset));
    }
    refused(
      () => decodeDriftProfile(stretched, spec),
      'MALFORMED',
      /components 1 and 1 are not orthonormal/,
    );
    refused(
      () =>
        decodeDriftProfile(
          patchFloat(componentOffset(1), (old) => old + 0.05),
          spec,
        ),
      'MALFORMED',
      /not orthonormal/,
    );
    // the encoder refuses what the decoder would
    refused(() => withBasis((pca) => (pca.mean[4] = NaN)), 'MALFORMED', /mean holds NaN/);
    refused(() => withBasis((pca) => (pca.inputSize = 11)), 'MALFORMED', /12 values, not 11/);
    refused(
      () => withBasis((pca) => pca.components[0]!.fill(0)),
      'MALFORMED',
      /components 0 and 0 are not orthonormal/,
    );
  });

  it('refuses every mismatch with the manifest', () => {
    const spec = sampleSpec();
    const signals = spec.signals;
    refused(
      () =>
        decodeDriftProfile(full, {
          ...spec,
          signals: [...signals, { name: 'extra', kind: 'numeric', source: { type: 'confidence' } }],
        }),
      'MALFORMED',
      /no baseline for signal extra/,
    );
    refused(
      () =>
        decodeDriftProfile(full, { ...spec, signals: signals.filter((s) => s.name !== 'input.7') }),
      'MALFORMED',
      /baseline for input.7, which the manifest does not monitor/,
    );
    const swapped = new Map(profileOf(spec, basis).baselines);
    swapped.set('confidence', createCategoricalSignal());
    refused(
      () => decodeDriftProfile(encodeDriftProfile({ pca: basis, baselines: swapped }), spec),
      'MALFORMED',
      /baseline for confidence is categorical, the signal is numeric/,
    );
    swapped.set('confidence', createNumericSignal()).set('predicted_class', createNumericSignal());
    refused(
      () => decodeDriftProfile(encodeDriftProfile({ pca: basis, baselines: swapped }), spec),
      'MALFORMED',
      /predicted_class is numeric, the signal is categorical/,
    );
    // PCA present iff used
    const withoutPca = encodeDriftProfile({
      pca: null,
      baselines: profileOf(spec, basis).baselines,
    });
    refused(() => decodeDriftProfile(withoutPca, spec), 'MALFORMED', /no PCA basis/);
    const unused = encodeDriftProfile({
      pca: basis,
      baselines: profileOf(specWithoutPca(), null).baselines,
    });
    refused(
      () => decodeDriftProfile(unused, specWithoutPca()),
      'MALFORMED',
      /no drift signal uses PCA/,
    );
    // component and input indices inside the basis
    const pca2 = signals.map((s) =>
      s.name === 'pca.1' ? { ...s, source: { type: 'pca' as const, component: 2 } } : s,
    );
    refused(
      () => decodeDriftProfile(full, { ...spec, signals: pca2 }),
      'MALFORMED',
      /component 2, the basis has 2/,
    );
    const input12 = signals.map((s) =>
      s.name === 'input.7' ? { ...s, source: { type: 'input' as const, index: 12 } } : s,
    );
    refused(
      () => decodeDriftProfile(full, { ...spec, signals: input12 }),
      'MALFORMED',
      /input 12, the PCA basis spans 12/,
    );
  });

  it('refuses duplicate and malformed signal names, and oversize sketches', () => {
    const spec = specWithoutPca();
    const firstName = 10; // header 8, then u8 length at 8, name from 9: 'input.3'
    const renamed = small.slice();
    renamed.set(new TextEncoder().encode('input.7'), 9);
    refused(() => decodeDriftProfile(renamed, spec), 'MALFORMED', /signal input.7 twice/);
    const upper = small.slice();
    upper[firstName] = 'N'.charCodeAt(0);
    refused(() => decodeDriftProfile(upper, spec), 'MALFORMED', /bad name "iNput.3"/);
    const empty = small.slice();
    empty[8] = 0;
    refused(() => decodeDriftProfile(empty, spec), 'MALFORMED', /bad name ""/);
    const long = small.slice();
    new DataView(long.buffer).setUint32(16, 0x7fffffff);
    refused(() => decodeDriftProfile(long, spec), 'TOO_LARGE', /signal input.3 claims/);
    assert.throws(() =>
      encodeDriftProfile({ pca: null, baselines: new Map([['Bad Name', createNumericSignal()]]) }),
    );
    refused(
      () => encodeDriftProfile({ pca: null, baselines: new Map() }),
      'MALFORMED',
      /0 baselines/,
    );
  });
});
