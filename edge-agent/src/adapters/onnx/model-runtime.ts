/**
 * The agent's model runtime on onnxruntime-node (CPU): loads ONNX bytes into
 * an InferenceSession, checks the model's tensors against the manifest's
 * `io` before anyone can serve it (THREATS 18, 40), and runs batches of
 * float32 rows.
 *
 * Sessions are shared and reference-counted by key (the bundle id): a
 * thousand simulated agents in one process on the same bundle hold one
 * session, and it is released when the last of them lets go (after any run
 * still in flight on it has finished).
 *
 * @example
 *   const runtime = createModelRuntime();
 *   const model = await runtime.load(bundleId, modelBytes, manifest.io);
 *   const { outputs, outputWidth } = await model.run(rows, batch);
 *   runtime.release(bundleId);
 */
import ort from 'onnxruntime-node';
import { isFleetError } from '@fleet/protocol';
import { agentError } from '../../core/errors.ts';
import type { LoadedModel, ManifestIo, ModelRunResult } from '../../core/loaded-model.ts';
import { checkModelIo, type IoPlan, type SessionIo } from '../../core/model-io.ts';

/** The part of an onnxruntime session the runtime uses. */
export type OrtSession = SessionIo & Pick<ort.InferenceSession, 'run' | 'release'>;

export interface ModelRuntimeOptions {
  /** Creates a session from model bytes; onnxruntime-node on the CPU by default. */
  createSession?: (modelBytes: Uint8Array) => Promise<OrtSession>;
}

export interface ModelRuntime {
  /**
   * Loads the model under `key`, or takes one more reference on the session
   * already loaded under it; `key` must identify the bytes (the bundle id).
   * Throws MODEL_LOAD when onnxruntime refuses the bytes and MODEL_IO_MISMATCH
   * when the model's tensors are not the manifest's `io`; neither leaves a
   * reference behind.
   */
  load(key: string, modelBytes: Uint8Array, io: ManifestIo): Promise<LoadedModel>;
  /** Drops one reference; the last one releases the session. Unknown keys are ignored. */
  release(key: string): void;
  /** References held on `key` (0 when nothing is loaded under it). */
  references(key: string): number;
}

interface Entry {
  refs: number;
  inFlight: number;
  /** Set when the last reference went; the session closes once no run is in flight. */
  released: boolean;
  session: Promise<OrtSession>;
}

export function createModelRuntime(options: ModelRuntimeOptions = {}): ModelRuntime {
  const createSession = options.createSession ?? createCpuSession;
  const entries = new Map<string, Entry>();

  function dropReference(key: string, entry: Entry): void {
    if (entry.released) return;
    entry.refs--;
    if (entry.refs > 0) return;
    entry.released = true;
    if (entries.get(key) === entry) entries.delete(key);
    if (entry.inFlight === 0) closeSession(entry);
  }

  return {
    async load(key, modelBytes, io) {
      let entry = entries.get(key);
      if (entry === undefined) {
        entry = {
          refs: 0,
          inFlight: 0,
          released: false,
          session: openSession(createSession, modelBytes),
        };
        entries.set(key, entry);
      }
      entry.refs++;
      try {
        const session = await entry.session;
        if (entry.released) {
          throw agentError('MODEL_RELEASED', `model ${key} was released while it was loading`);
        }
        return modelHandle(key, entry, session, checkModelIo(session, io));
      } catch (error) {
        dropReference(key, entry);
        throw error;
      }
    },
    release(key) {
      const entry = entries.get(key);
      if (entry !== undefined) dropReference(key, entry);
    },
    references: (key) => entries.get(key)?.refs ?? 0,
  };
}

async function createCpuSession(modelBytes: Uint8Array): Promise<OrtSession> {
  return ort.InferenceSession.create(modelBytes, { executionProviders: ['cpu'] });
}

async function openSession(
  createSession: (modelBytes: Uint8Array) => Promise<OrtSession>,
  modelBytes: Uint8Array,
): Promise<OrtSession> {
  try {
    return await createSession(modelBytes);
  } catch (cause) {
    throw agentError('MODEL_LOAD', `onnxruntime cannot load the model: ${String(cause)}`, {
      cause,
    });
  }
}

function closeSession(entry: Entry): void {
  // A session that never opened has nothing to release; a failing release
  // leaks at most one native session, which nothing here can do better about.
  entry.session.then((s) => s.release()).catch(() => undefined);
}

function modelHandle(key: string, entry: Entry, session: OrtSession, plan: IoPlan): LoadedModel {
  async function run(input: Float32Array, batch: number): Promise<ModelRunResult> {
    if (entry.released) throw agentError('MODEL_RELEASED', `model ${key} has been released`);
    checkBatch(plan, input, batch);
    entry.inFlight++;
    try {
      const feeds = {
        [plan.inputName]: new ort.Tensor('float32', input, [batch, ...plan.inputDims]),
      };
      const results = await session.run(feeds, [plan.outputName]);
      return readOutput(plan, results[plan.outputName], batch);
    } catch (error) {
      if (isFleetError(error)) throw error;
      throw agentError('INFER_FAILED', `onnxruntime failed: ${String(error)}`, { cause: error });
    } finally {
      entry.inFlight--;
      if (entry.released && entry.inFlight === 0) closeSession(entry);
    }
  }
  return {
    key,
    inputName: plan.inputName,
    outputName: plan.outputName,
    inputWidth: plan.inputWidth,
    run,
  };
}

function checkBatch(plan: IoPlan, input: Float32Array, batch: number): void {
  if (!Number.isInteger(batch) || batch < 1) {
    throw agentError('INFER_INPUT', `batch must be a positive integer, got ${batch}`);
  }
  if (plan.fixedBatch !== null && batch !== plan.fixedBatch) {
    throw agentError(
      'INFER_INPUT',
      `the model takes batches of exactly ${plan.fixedBatch}, got ${batch}`,
    );
  }
  if (input.length !== batch * plan.inputWidth) {
    throw agentError(
      'INFER_INPUT',
      `${input.length} numbers are not ${batch} rows of ${plan.inputWidth}`,
    );
  }
}

/** The output must be float32 of `batch` rows of the declared width (THREATS 40). */
function readOutput(plan: IoPlan, value: ort.OnnxValue | undefined, batch: number): ModelRunResult {
  if (!(value instanceof ort.Tensor) || value.type !== 'float32') {
    throw agentError('INFER_FAILED', `the model returned no float32 tensor ${plan.outputName}`);
  }
  const [rows, ...rest] = value.dims;
  const outputWidth = rest.reduce((a, b) => a * b, 1);
  const data = value.data as Float32Array;
  if (
    rows !== batch ||
    data.length !== batch * outputWidth ||
    (plan.outputWidth !== null && outputWidth !== plan.outputWidth)
  ) {
    throw agentError(
      'INFER_FAILED',
      `output ${plan.outputName} has shape [${value.dims.join(', ')}], expected ${batch} rows of ${plan.outputWidth ?? 'any width'}`,
    );
  }
  return { outputs: data, outputWidth };
}
