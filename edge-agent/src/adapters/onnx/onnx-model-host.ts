/**
 * The ModelHost (core/model-host.ts) on onnxruntime-node: a slot's model is
 * loaded through the shared, reference-counted runtime (so a thousand
 * simulated agents on one bundle hold one session), its golden vectors are
 * parsed from the bundle's `golden.json` (also once per bundle and runtime:
 * parsing them was 7% of a 1,000-agent simulated fleet's CPU in a rollout),
 * and serving goes through the inference service, whose health window
 * probation is judged on.
 */
import {
  FleetError,
  parseGoldenVectors,
  type BundleModelRef,
  type GoldenVectors,
  type Manifest,
} from '@fleet/protocol';
import { agentError } from '../../core/errors.ts';
import { judgeProbation } from '../../core/health-window.ts';
import { createInferenceService, type InferenceService } from '../../core/inference-service.ts';
import type { LoadedModel } from '../../core/loaded-model.ts';
import type { HealthReport, ModelHost } from '../../core/model-host.ts';
import { runSelfTest } from '../../core/self-test.ts';
import type { SlotContents } from '../../core/storage.ts';
import type { Slot } from '../../core/update-state.ts';
import { createModelRuntime, type ModelRuntime } from './model-runtime.ts';

export const MODEL_PART = 'model.onnx';
export const GOLDEN_PART = 'golden.json';

export interface OnnxModelHostOptions {
  /** Share one runtime between agents in a process (the simulator). */
  runtime?: ModelRuntime;
  nowMs?: () => number;
  /** Fewer requests than this on probation cannot be judged, and passes with that said (default 0). */
  minProbationRequests?: number;
}

export interface OnnxModelHost extends ModelHost {
  readonly inference: InferenceService;
}

/**
 * Parsed golden vectors per shared runtime, by bundle id. An entry is used
 * only for byte-identical golden.json (compared, which costs far less than
 * parsing), so a slot holding other bytes under the same id is parsed, and
 * refused if malformed, as before. Parsed vectors are only read.
 */
const GOLDEN_KEPT = 8;
type KeptGolden = Map<string, { bytes: Buffer; golden: GoldenVectors }>;
const parsedGolden = new WeakMap<ModelRuntime, KeptGolden>();

function goldenOf(runtime: ModelRuntime, bundleId: string, bytes: Uint8Array): GoldenVectors {
  let kept = parsedGolden.get(runtime);
  if (!kept) {
    kept = new Map() as KeptGolden;
    parsedGolden.set(runtime, kept);
  }
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hit = kept.get(bundleId);
  if (hit?.bytes.equals(view)) return hit.golden;
  const golden = parseGoldenVectors(bytes);
  kept.delete(bundleId);
  kept.set(bundleId, { bytes: Buffer.from(view), golden });
  if (kept.size > GOLDEN_KEPT) kept.delete(kept.keys().next().value!);
  return golden;
}

interface Loaded {
  model: LoadedModel;
  golden: GoldenVectors;
  key: string;
}

export function createOnnxModelHost(options: OnnxModelHostOptions = {}): OnnxModelHost {
  const runtime = options.runtime ?? createModelRuntime();
  const nowMs = options.nowMs ?? (() => Date.now());
  const inference = createInferenceService({ nowMs, perfNowMs: () => performance.now() });
  const slots = new Map<Slot, Loaded>();
  let serving: { slot: Slot; ref: BundleModelRef } | null = null;

  function take(probation: boolean): HealthReport | null {
    const health = inference.takeHealth(nowMs());
    if (!health.model) return null;
    const { model, ...window } = health;
    return {
      ...window,
      model: { name: model.name, version: model.version, release: model.release },
      probation,
    };
  }

  return {
    inference,
    async load(slot, contents: SlotContents, manifest: Manifest) {
      if (!manifest.io)
        throw agentError(
          'MODEL_IO_MISMATCH',
          `bundle ${manifest.name}@${manifest.version} declares no io; the agent cannot check its model`,
        );
      const modelBytes = contents.parts.get(MODEL_PART);
      const goldenBytes = contents.parts.get(GOLDEN_PART);
      if (!modelBytes)
        throw agentError(
          'MODEL_LOAD',
          `bundle ${contents.bundleId.slice(0, 12)}… has no ${MODEL_PART} part`,
        );
      if (!goldenBytes)
        throw agentError(
          'SELF_TEST_FAILED',
          `bundle ${contents.bundleId.slice(0, 12)}… has no ${GOLDEN_PART} part to self-test with`,
        );
      const golden = goldenOf(runtime, contents.bundleId, goldenBytes);
      const previous = slots.get(slot);
      if (previous?.key === contents.bundleId) return;
      const model = await runtime.load(contents.bundleId, modelBytes, manifest.io);
      if (previous) runtime.release(previous.key);
      slots.set(slot, { model, golden, key: contents.bundleId });
    },
    async selfTest(slot) {
      const loaded = slots.get(slot);
      if (!loaded) return { ok: false, message: `slot ${slot} has no model loaded` };
      const report = await runSelfTest(loaded.model, loaded.golden);
      return { ok: report.ok, message: report.message };
    },
    serve(slot, ref) {
      const loaded = slots.get(slot);
      if (!loaded) throw new FleetError('NO_MODEL', `slot ${slot} has no model loaded to serve`);
      inference.setActive(loaded.model, ref);
      serving = { slot, ref };
    },
    unload(slot) {
      const loaded = slots.get(slot);
      if (!loaded) return;
      if (serving?.slot === slot) {
        inference.clearActive();
        serving = null;
      }
      slots.delete(slot);
      runtime.release(loaded.key);
    },
    loaded: (slot) => slots.has(slot),
    observeInferences: (observer) => inference.observe(observer),
    judgeProbation(policy) {
      const health = take(true);
      if (!health)
        return { pass: false, reason: 'no model was serving on probation', health: null };
      const verdict = judgeProbation(health, policy, options.minProbationRequests ?? 0);
      if (verdict.verdict === 'insufficient') {
        return { pass: true, reason: `passed without judging: ${verdict.reason}`, health };
      }
      return { pass: verdict.verdict === 'pass', reason: verdict.reason, health };
    },
    takeHealth: () => take(false),
  };
}
