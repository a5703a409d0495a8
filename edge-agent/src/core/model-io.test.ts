/**
 * The manifest-io check on plain tensor descriptions: every way a model can
 * differ from what its manifest promises is refused, naming the difference,
 * and a matching model yields the plan the runtime feeds it by.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import type { ManifestIo } from './loaded-model.ts';
import { checkModelIo, type SessionIo, type TensorMetadata } from './model-io.ts';

const tensor = (name: string, shape: (number | string)[], type = 'float32'): TensorMetadata => ({
  name,
  isTensor: true,
  type,
  shape,
});

const session = (inputs: TensorMetadata[], outputs: TensorMetadata[]): SessionIo => ({
  inputMetadata: inputs,
  outputMetadata: outputs,
});

const mnistIo = (): ManifestIo => ({
  inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 784] }],
  outputs: [{ name: 'probabilities', dtype: 'float32', shape: ['batch', 10] }],
});

const mnistSession = () =>
  session([tensor('input', ['batch', 784])], [tensor('probabilities', ['batch', 10])]);

function refused(s: SessionIo, io: ManifestIo, message: RegExp): void {
  assert.throws(
    () => checkModelIo(s, io),
    (e: unknown) => isFleetError(e, 'MODEL_IO_MISMATCH') && message.test(e.message),
  );
}

describe('checkModelIo', () => {
  it('plans a matching model: one float32 input of rows, the first output', () => {
    assert.deepEqual(checkModelIo(mnistSession(), mnistIo()), {
      inputName: 'input',
      inputDims: [784],
      inputWidth: 784,
      fixedBatch: null,
      outputName: 'probabilities',
      outputWidth: 10,
    });
  });

  it('multiplies image dimensions into the row width; takes a fixed batch', () => {
    const io: ManifestIo = {
      inputs: [{ name: 'x', dtype: 'float32', shape: [8, 1, 28, 28] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [8, 'classes'] }],
    };
    const plan = checkModelIo(session([tensor('x', [8, 1, 28, 28])], [tensor('y', [8, 'c'])]), io);
    assert.deepEqual(
      [plan.inputDims, plan.inputWidth, plan.fixedBatch, plan.outputWidth],
      [[1, 28, 28], 784, 8, null],
    );
  });

  it('accepts a free dimension under another name, and negative sizes as free', () => {
    const s = session([tensor('input', [-1, 784])], [tensor('probabilities', ['N', 10])]);
    assert.equal(checkModelIo(s, mnistIo()).inputWidth, 784);
  });

  it('refuses different tensor names, counts or order', () => {
    refused(
      session([tensor('pixels', ['batch', 784])], [tensor('probabilities', ['batch', 10])]),
      mnistIo(),
      /model's inputs are \[pixels\], the manifest declares \[input\]/,
    );
    refused(
      session(
        [tensor('input', ['batch', 784])],
        [tensor('probabilities', ['batch', 10]), tensor('logits', ['batch', 10])],
      ),
      mnistIo(),
      /outputs are \[probabilities, logits\], the manifest declares \[probabilities\]/,
    );
    const two = session([tensor('a', ['n', 1]), tensor('b', ['n', 1])], []);
    const swapped: ManifestIo = {
      inputs: [
        { name: 'b', dtype: 'float32', shape: ['n', 1] },
        { name: 'a', dtype: 'float32', shape: ['n', 1] },
      ],
      outputs: [],
    };
    refused(two, swapped, /\[a, b\], the manifest declares \[b, a\]/);
  });

  it('refuses a type, rank or size that differs, and a fixed size where the manifest is free', () => {
    refused(
      session([tensor('input', ['batch', 784], 'uint8')], [tensor('probabilities', ['batch', 10])]),
      mnistIo(),
      /input input is uint8, the manifest declares float32/,
    );
    refused(
      session([tensor('input', ['batch', 28, 28])], [tensor('probabilities', ['batch', 10])]),
      mnistIo(),
      /\[batch, 28, 28\], the manifest declares \[batch, 784\]/,
    );
    refused(
      session([tensor('input', ['batch', 784])], [tensor('probabilities', ['batch', 9])]),
      mnistIo(),
      /output probabilities has shape \[batch, 9\]/,
    );
    refused(
      session([tensor('input', [1, 784])], [tensor('probabilities', ['batch', 10])]),
      mnistIo(),
      /\[1, 784\], the manifest declares \[batch, 784\]/,
    );
    refused(
      session([tensor('input', [])], [tensor('probabilities', ['batch', 10])]),
      mnistIo(),
      /has shape \[\]/,
    );
    refused(
      session([{ name: 'input', isTensor: false }], [tensor('probabilities', ['batch', 10])]),
      mnistIo(),
      /input input is not a tensor/,
    );
  });

  it('refuses what the agent cannot feed even when model and manifest agree', () => {
    const out = [{ name: 'y', dtype: 'float32' as const, shape: ['n', 10] }];
    const x = (shape: (number | string)[]) => ({ name: 'x', dtype: 'float32' as const, shape });
    assert.match(refusalOf([x(['n', 784]), { ...x(['n', 1]), name: 'z' }], out), /2 inputs/);
    assert.match(refusalOf([{ ...x(['n', 4]), dtype: 'int32' }], out), /float32 tensors only/);
    assert.match(refusalOf([x(['n', 'width'])], out), /must be a fixed size/);
    assert.match(refusalOf([x(['n', 0])], out), /must be a fixed size/);
    assert.match(refusalOf([x(['n'])], out), /needs \[batch, \.\.\.\]/);
    assert.match(refusalOf([x(['n', 4])], []), /declares no output/);
    assert.match(
      refusalOf([x(['n', 4])], [{ name: 'y', dtype: 'int64', shape: ['n', 1] }]),
      /output y is int64/,
    );
  });
});

/** The MODEL_IO_MISMATCH message for a manifest and a model that agree with it exactly. */
function refusalOf(inputs: ManifestIo['inputs'], outputs: ManifestIo['outputs']): string {
  const s = session(
    inputs.map((t) => tensor(t.name, t.shape, t.dtype)),
    outputs.map((t) => tensor(t.name, t.shape, t.dtype)),
  );
  try {
    checkModelIo(s, { inputs, outputs });
  } catch (e) {
    assert.ok(isFleetError(e, 'MODEL_IO_MISMATCH'), String(e));
    return e.message;
  }
  return assert.fail('accepted');
}
