/**
 * What drift scoring needs of a bundle: its monitored signals and their
 * baseline sketches (the bundle's drift profile part, ARCHITECTURE
 * "Drift"). The port the drift service reads them through; the adapter
 * reads the registered bundle from the blob store.
 */
import type { SignalSketch } from '@fleet/protocol';

export type SignalKind = SignalSketch['kind'];

/** A bundle's drift profile as the control plane scores against it. */
export interface DriftBaseline {
  /** The monitored signals, in the manifest's order. */
  signals: ReadonlyArray<{ name: string; kind: SignalKind }>;
  /** The baseline sketch of each signal, by name. */
  baselines: ReadonlyMap<string, SignalSketch>;
  /** The KLL k devices sketch numeric signals with (the manifest's `drift.sketchK`). */
  sketchK: number;
}

export interface DriftBaselines {
  /** The drift profile of a registered bundle; null when it has none (or is not registered). */
  forBundle(bundleId: string): Promise<DriftBaseline | null>;
}
