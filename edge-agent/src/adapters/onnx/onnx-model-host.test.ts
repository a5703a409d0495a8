/**
 * The onnxruntime model host's golden vectors, parsed once per bundle on a
 * shared runtime: agents on one runtime share the parse, and a slot whose
 * golden.json differs from the kept bytes under the same bundle id is parsed
 * on its own (a malformed one is refused, a different one is the one used).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import { mnistShapedBundle, type TestBundle } from '../../__fixtures__/mnist-shaped-bundle.ts';
import type { SlotContents } from '../../core/storage.ts';
import { createModelRuntime } from './model-runtime.ts';
import { createOnnxModelHost, GOLDEN_PART } from './onnx-model-host.ts';

let bundle: TestBundle;
before(async () => {
  bundle = await mnistShapedBundle();
});

function contentsWith(golden: Uint8Array): SlotContents {
  const parts = new Map(bundle.parts);
  parts.set(GOLDEN_PART, golden);
  return { bundleId: bundle.bundleId, manifestEnvelope: bundle.envelopeBytes, parts };
}

describe('onnx model host: golden vectors per shared runtime', () => {
  it('agents sharing a runtime self-test with the bundle’s golden vectors', async () => {
    const runtime = createModelRuntime();
    const golden = bundle.parts.get(GOLDEN_PART)!;
    for (const host of [createOnnxModelHost({ runtime }), createOnnxModelHost({ runtime })]) {
      await host.load('a', contentsWith(golden.slice()), bundle.manifest);
      const report = await host.selfTest('a');
      assert.equal(report.ok, true, report.message);
      host.unload('a');
    }
  });

  it('parses other bytes under the same bundle id: malformed is refused, different is used', async () => {
    const runtime = createModelRuntime();
    const golden = bundle.parts.get(GOLDEN_PART)!;
    const first = createOnnxModelHost({ runtime });
    await first.load('a', contentsWith(golden), bundle.manifest);

    const malformed = golden.slice(0, golden.length - 1);
    await assert.rejects(
      createOnnxModelHost({ runtime }).load('a', contentsWith(malformed), bundle.manifest),
      (error) => isFleetError(error) && error.code === 'MALFORMED',
    );

    // The same cases with every expected output moved off by one: the self-test must fail.
    const parsed = JSON.parse(new TextDecoder().decode(golden)) as {
      cases: { output: number[] }[];
    };
    for (const c of parsed.cases) c.output = c.output.map((v) => v + 1);
    const shifted = new TextEncoder().encode(JSON.stringify(parsed));
    const second = createOnnxModelHost({ runtime });
    await second.load('a', contentsWith(shifted), bundle.manifest);
    assert.equal((await second.selfTest('a')).ok, false);

    // The first agent still judges with its own vectors.
    assert.equal((await first.selfTest('a')).ok, true);
  });
});
