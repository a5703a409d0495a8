/**
 * What the update machine's driver needs from the inference side, as one
 * interface: load a slot's model beside the serving one, run its golden
 * vectors, switch traffic, unload, and judge probation health. The ONNX
 * implementation is adapters/onnx/onnx-model-host.ts.
 */
import type { BundleModelRef, HealthMessage, Manifest, ProbationPolicy } from '@fleet/protocol';
import type { InferenceObserver } from './inference-service.ts';
import type { SlotContents } from './storage.ts';
import type { Slot } from './update-state.ts';

export interface SelfTestResult {
  ok: boolean;
  message: string;
}

/** A health message's body: what `Reporter.publishHealth` sends. */
export type HealthReport = Omit<HealthMessage, 'type' | 'id' | 'schemaVersion' | 'ts'>;

export interface ProbationVerdict {
  pass: boolean;
  reason: string;
  /** The probation window's health (reported with `probation: true`); null when nothing served. */
  health: HealthReport | null;
}

export interface ModelHost {
  /** Loads a slot's model; refuses (throws FleetError) a model that does not match its manifest's io (THREATS 18, 40). */
  load(slot: Slot, contents: SlotContents, manifest: Manifest): Promise<void>;
  /** Runs the slot's golden vectors against its loaded model. */
  selfTest(slot: Slot): Promise<SelfTestResult>;
  /** Routes inference to the slot's loaded model and starts a fresh health window for it. */
  serve(slot: Slot, model: BundleModelRef): void;
  unload(slot: Slot): void;
  /** Judges the health of what has been served since `serve` against the policy (and starts a new window). */
  judgeProbation(policy: ProbationPolicy): ProbationVerdict;
  /** The serving model's health since the last take, for the periodic report; null when nothing serves. */
  takeHealth(): HealthReport | null;
  /** Whether a slot's model is loaded. */
  loaded(slot: Slot): boolean;
  /** Sets the one observer of the served models' successful inferences (the drift monitor); null: none. */
  observeInferences(observer: InferenceObserver | null): void;
}
