/**
 * The manifest's `drift` field: parsed strictly, and checked against the
 * rest of the manifest (the profile part is in the bundle; input indices are
 * inside the model input).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';
import { manifestInput } from '../__fixtures__/bundles.ts';
import { sampleSpec } from '../drift/__fixtures__/profile-fixtures.ts';
import {
  DRIFT_MAX_SIGNALS,
  MANIFEST_SCHEMA_VERSION,
  parseManifest,
  type ManifestDrift,
} from './manifest.ts';

const HASH = 'a'.repeat(64);
const part = (name: string) => ({
  name,
  mediaType: 'application/octet-stream',
  compression: 'none' as const,
  length: 10,
  sha256: HASH,
  uncompressedLength: 10,
  uncompressedSha256: HASH,
});

function manifestWith(drift: unknown, io?: unknown): unknown {
  return {
    type: 'fleet-bundle',
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    ...manifestInput(),
    ...(io === undefined ? {} : { io }),
    parts: [part('model.onnx'), part('drift-profile.bin')],
    drift,
  };
}

const io = (shape: (number | string)[]) => ({
  inputs: [{ name: 'input', dtype: 'float32', shape }],
  outputs: [{ name: 'probabilities', dtype: 'float32', shape: ['batch', 4] }],
});

function signalsWith(extra: ManifestDrift['signals']): ManifestDrift {
  return sampleSpec({ signals: [...sampleSpec().signals, ...extra] });
}

describe('manifest drift field', () => {
  it('parses a valid drift spec, and a manifest without one', () => {
    const manifest = parseManifest(manifestWith(sampleSpec(), io(['batch', 12])));
    assert.deepEqual(manifest.drift, sampleSpec());
    const without = manifestWith(sampleSpec()) as Record<string, unknown>;
    delete without.drift;
    assert.equal(parseManifest(without).drift, undefined);
  });

  it('refuses a profile part that is not in the bundle', () => {
    refused(
      () => parseManifest(manifestWith(sampleSpec({ part: 'profile.bin' }))),
      'MALFORMED',
      /drift.part: "profile.bin" is not a part of the bundle/,
    );
  });

  it('refuses an input index outside a fixed model input, and accepts it when the input is free', () => {
    const wide = signalsWith([
      { name: 'input.12', kind: 'numeric', source: { type: 'input', index: 12 } },
    ]);
    refused(
      () => parseManifest(manifestWith(wide, io(['batch', 3, 4]))),
      'MALFORMED',
      /drift.signals.7.source.index: 12 is outside the model input of 12 features/,
    );
    parseManifest(manifestWith(wide, io(['batch', 13])));
    parseManifest(manifestWith(wide, io(['batch', 'features'])));
    parseManifest(manifestWith(wide));
  });

  it('refuses signal lists that break the rules', () => {
    const cases: [unknown, RegExp][] = [
      [
        signalsWith([{ name: 'confidence', kind: 'numeric', source: { type: 'confidence' } }]),
        /drift.signals.7.name: listed twice/,
      ],
      [
        signalsWith([{ name: 'class2', kind: 'numeric', source: { type: 'predicted-class' } }]),
        /drift.signals.7.kind: a predicted-class signal is categorical/,
      ],
      [
        signalsWith([{ name: 'conf2', kind: 'categorical', source: { type: 'confidence' } }]),
        /drift.signals.7.kind: a confidence signal is numeric/,
      ],
      [
        signalsWith([{ name: 'Bad', kind: 'numeric', source: { type: 'pca-error' } }]),
        /drift.signals.7.name: a signal name is 1-64 of/,
      ],
      [
        signalsWith([{ name: 'x'.repeat(65), kind: 'numeric', source: { type: 'pca-error' } }]),
        /drift.signals.7.name/,
      ],
      [sampleSpec({ signals: [] }), /drift.signals/],
      [
        sampleSpec({
          signals: Array.from({ length: DRIFT_MAX_SIGNALS + 1 }, (_, i) => ({
            name: `input.${i}`,
            kind: 'numeric' as const,
            source: { type: 'input' as const, index: i },
          })),
        }),
        /drift.signals/,
      ],
      [
        signalsWith([{ name: 'odd', kind: 'numeric', source: { type: 'median' } as never }]),
        /drift.signals.7.source/,
      ],
      [
        signalsWith([{ name: 'neg', kind: 'numeric', source: { type: 'pca', component: -1 } }]),
        /drift.signals.7.source.component/,
      ],
      [
        signalsWith([{ name: 'frac', kind: 'numeric', source: { type: 'input', index: 1.5 } }]),
        /drift.signals.7.source.index/,
      ],
    ];
    for (const [drift, message] of cases) {
      refused(() => parseManifest(manifestWith(drift)), 'MALFORMED', message);
    }
  });

  it('refuses bad sampling, flush and sketch settings, and unknown fields', () => {
    const cases: [Partial<ManifestDrift> & Record<string, unknown>, RegExp][] = [
      [{ sampleRate: 0 }, /drift.sampleRate/],
      [{ sampleRate: 1.5 }, /drift.sampleRate/],
      [{ flush: { maxSamples: 0, maxIntervalMs: 60_000 } }, /drift.flush.maxSamples/],
      [{ flush: { maxSamples: 100, maxIntervalMs: 10 } }, /drift.flush.maxIntervalMs/],
      [{ sketchK: 4 }, /drift.sketchK/],
      [{ sketchK: 100.5 }, /drift.sketchK/],
      [{ baseline: 'x' }, /drift: Unrecognized key/],
    ];
    for (const [change, message] of cases) {
      refused(() => parseManifest(manifestWith(sampleSpec(change))), 'MALFORMED', message);
    }
    parseManifest(manifestWith(sampleSpec({ sampleRate: 1 })));
  });
});
