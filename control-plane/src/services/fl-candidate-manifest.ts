/**
 * What a federated candidate's signed manifest says, computed from its base
 * version and the round's lineage (pure functions; services/fl-candidates.ts
 * builds and signs the bundle):
 *
 *   version   the next minor above every registered version of the base's
 *             major (base 1.2.0, registered up to 1.4.0: 1.5.0): a round
 *             changes weights, not the model's interface, so never a major;
 *             and not a patch, which reads as a fix of the base
 *   release   the latest registered release + 1
 *   lineage   protocol's strict `lineageSchema`: producer `federated-round`
 *             with the round id and the participant count, the base as
 *             parent, and the strategy, hyperparameters, total samples and
 *             held-out accuracies as scalar hyperparameters. The schema has
 *             no room for per-device sample counts: those are in the
 *             registry's `fl_candidates` row and the audit log.
 *   validity  issued now, valid as long as the base's manifest was
 */
import type { Manifest, ManifestInput } from '@fleet/protocol';
import type { DriftSignalRequest } from '@fleet/bundles';
import { controlPlaneError } from '../core/errors.ts';
import type { CandidateLineage } from '../core/fl/candidate-port.ts';

const VERSION = /^(\d+)\.(\d+)\.(\d+)/;

/** The next minor version of the base's major above every `registered` one. */
export function nextCandidateVersion(baseVersion: string, registered: readonly string[]): string {
  const base = VERSION.exec(baseVersion);
  if (!base)
    throw controlPlaneError('INVALID_REQUEST', `base version ${baseVersion} is not semver`);
  const major = Number(base[1]);
  let minor = Number(base[2]);
  for (const version of registered) {
    const m = VERSION.exec(version);
    if (m && Number(m[1]) === major) minor = Math.max(minor, Number(m[2]));
  }
  return `${major}.${minor + 1}.0`;
}

/** The signed manifest lineage of a candidate built from `base` by the round `lineage` describes. */
export function candidateManifestLineage(
  base: Pick<Manifest, 'version' | 'release'>,
  lineage: CandidateLineage,
  evalSet: string,
): Manifest['lineage'] {
  const { config, strategy } = lineage;
  const hyperparameters: Record<string, string | number | boolean> = {
    strategy: strategy.kind,
    ...(strategy.kind === 'trimmed-mean' ? { 'strategy.beta': strategy.beta } : {}),
    fraction: config.fraction,
    minClients: config.minClients,
    minSamples: config.minSamples,
    maxSamples: config.maxSamples,
    epochs: config.epochs,
    batchSize: config.batchSize,
    learningRate: config.learningRate,
    proxMu: config.proxMu,
    clipNorm: config.clipNorm,
    encoding: config.encoding,
    evaluationMargin: config.evaluationMargin,
    totalSamples: lineage.participants.reduce((sum, p) => sum + p.sampleCount, 0),
    evalSet,
    candidateAccuracy: lineage.evaluation.candidateAccuracy,
    championAccuracy: lineage.evaluation.championAccuracy,
  };
  return {
    producer: {
      kind: 'federated-round',
      roundId: lineage.roundId,
      participants: lineage.participants.length,
    },
    parent: { version: base.version, release: base.release },
    hyperparameters,
  };
}

/** The manifest fields a candidate takes from its base, with its own identity and lineage. */
export function candidateManifestInput(input: {
  base: Manifest;
  version: string;
  release: number;
  lineage: Manifest['lineage'];
  nowMs: number;
}): Omit<ManifestInput, 'io' | 'quantization'> {
  const { base } = input;
  const validityMs = Date.parse(base.expires) - Date.parse(base.issuedAt);
  if (!(validityMs > 0)) {
    throw controlPlaneError(
      'INVALID_REQUEST',
      `base ${base.name}@${base.version} has no validity period`,
    );
  }
  return {
    name: base.name,
    version: input.version,
    release: input.release,
    hardware: base.hardware,
    ...(base.devices ? { devices: base.devices } : {}),
    minAgentVersion: base.minAgentVersion,
    issuedAt: new Date(input.nowMs).toISOString(),
    expires: new Date(input.nowMs + validityMs).toISOString(),
    lineage: input.lineage,
  };
}

/**
 * The drift signals of the base's manifest as the factory's requests, so the
 * candidate monitors the same things (its baselines are its own: computed on
 * the held-out set through the candidate's int8 model).
 */
export function driftRequestsOf(drift: NonNullable<Manifest['drift']>): DriftSignalRequest[] {
  const requests: DriftSignalRequest[] = [];
  let pcaCount = 0;
  for (const { source } of drift.signals) {
    if (source.type === 'pca') pcaCount = Math.max(pcaCount, source.component + 1);
    else requests.push(source);
  }
  if (pcaCount > 0) requests.push({ type: 'pca', count: pcaCount });
  return requests;
}
