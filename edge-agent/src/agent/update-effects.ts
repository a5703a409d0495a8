/**
 * The update machine's actions, carried out (the adapter side of
 * core/update-machine.ts). Each action that needs an answer dispatches it as
 * an input; failures become inputs too (with the FleetError code as the
 * reported error code), never exceptions, so every failure is reported.
 *
 *   check-manifest   protocol verifyManifestEnvelope: root fresh, threshold of
 *                    bundle keys, expiry, release above the floor, hardware,
 *                    device, agent version, part sizes (before any block);
 *                    the deploy's model must be the manifest's
 *   download         block-downloader.ts
 *   stage            whole file: SHA-256 = bundle id, same signed manifest as
 *                    the deploy, every verification step again with the
 *                    parts; then the parts go into the spare slot
 *   activate         the drift profile checked against the manifest (a
 *                    bundle whose profile does not decode is refused,
 *                    DRIFT_PROFILE), then load the slot's model, golden vectors
 *   serve            route inference to the slot and tell `onServe` which
 *                    model serves and what drift it monitors
 *   judge-probation  the model host's health window against the policy
 */
import {
  bundleIdOf,
  bytesEqual,
  fromBase64,
  fromUtf8,
  isFleetError,
  parseEnvelope,
  utf8,
  verifyBundle,
  verifyManifestEnvelope,
  type BundleModelRef,
  type ErrorReport,
  type Manifest,
  type TrustedRoot,
} from '@fleet/protocol';
import { nodeInflate } from '@fleet/protocol/node';
import { checkDriftProfile, type CheckedDrift } from '../core/drift-profile-check.ts';
import type { ModelHost } from '../core/model-host.ts';
import type { DownloadStore, SlotStore } from '../core/storage.ts';
import type { UpdateAction } from '../core/update-machine.ts';
import type { AgentState, Slot, UpdateJob } from '../core/update-state.ts';
import type { BlockDownloader } from './block-downloader.ts';
import type { Dispatch, RunAction } from './update-driver.ts';
import { stateUpdate, type Reporter } from './reporter.ts';

export interface UpdateEffectsOptions {
  deviceId: string;
  hardware: string;
  agentVersion: string;
  trustRoot: () => TrustedRoot;
  nowMs: () => number;
  downloads: DownloadStore;
  slots: SlotStore;
  downloader: BlockDownloader;
  host: ModelHost;
  reporter: Reporter;
  /** The driver's current state, for reports. */
  state: () => AgentState;
  /** Largest total uncompressed bundle size the device accepts (THREATS 24). */
  maxBundleBytes?: number;
  /**
   * A model now serves, with its bundle's checked drift spec (null: not
   * monitored). After a restart a committed model whose profile no longer
   * checks out still serves, unmonitored, with the reason in `driftError`.
   */
  onServe?: (model: BundleModelRef, drift: CheckedDrift | null, driftError: unknown) => void;
}

export function errorReport(error: unknown, fallbackCode = 'AGENT_ERROR'): ErrorReport {
  const code = isFleetError(error) ? error.code : fallbackCode;
  const message = error instanceof Error ? error.message : String(error);
  return { code, message: message.slice(0, 1000) };
}

export function createUpdateEffects(options: UpdateEffectsOptions): RunAction {
  const { host, slots, reporter } = options;
  /** The checked drift of each slot's loaded bundle. */
  const slotDrift = new Map<Slot, { bundleId: string; drift: CheckedDrift | null }>();
  const limits = options.maxBundleBytes
    ? { maxTotalUncompressedBytes: options.maxBundleBytes }
    : {};

  function verifyOptions(installedRelease: number) {
    return {
      root: options.trustRoot(),
      nowMs: options.nowMs(),
      installedRelease,
      hardwareClass: options.hardware,
      deviceId: options.deviceId,
      agentVersion: options.agentVersion,
      inflate: nodeInflate,
      limits,
    };
  }

  function floorFor(job: UpdateJob): number {
    // A signed rollback instruction authorized this lower release (checked when it arrived).
    return job.authorizedRollback ? 0 : (options.state().releaseFloor[job.model.name] ?? 0);
  }

  async function checkManifest(
    action: Extract<UpdateAction, { type: 'check-manifest' }>,
    dispatch: Dispatch,
  ) {
    const { command } = action;
    try {
      const envelope = utf8(JSON.stringify(command.bundle.manifestEnvelope));
      const { manifest } = await verifyManifestEnvelope(
        envelope,
        verifyOptions(action.installedRelease),
      );
      assertSameModel(manifest, command.model);
      dispatch({
        type: 'manifest-checked',
        command,
        result: {
          ok: true,
          model: {
            name: manifest.name,
            version: manifest.version,
            release: manifest.release,
            bundleId: command.bundle.bundleId,
          },
        },
      });
    } catch (error) {
      dispatch({
        type: 'manifest-checked',
        command,
        result: { ok: false, error: errorReport(error) },
      });
    }
  }

  async function stage(job: UpdateJob, dispatch: Dispatch) {
    const bundleId = job.model.bundleId;
    try {
      const download = await options.downloads.open({
        bundleId,
        blockRoot: job.blockRoot,
        sizeBytes: job.sizeBytes,
        blockSizeBytes: job.blockSizeBytes,
        blockCount: job.blockCount,
      });
      const bytes = await download.read();
      // The file is the one the deploy named (its content address) ...
      const actualId = await bundleIdOf(bytes);
      if (actualId !== bundleId) {
        throw Object.assign(new Error(`downloaded file hashes to ${actualId}, not ${bundleId}`), {
          code: 'BUNDLE_ID_MISMATCH',
        });
      }
      const verified = await verifyBundle(bytes, verifyOptions(floorFor(job)));
      // ... and carries the very manifest the deploy was checked with (THREATS 12).
      const deployed = await verifyManifestEnvelope(
        utf8(job.manifestEnvelope),
        verifyOptions(floorFor(job)),
      );
      if (!bytesEqual(deployed.manifestBytes, verified.manifestBytes)) {
        throw Object.assign(
          new Error('the bundle carries another manifest than its deploy command'),
          { code: 'MANIFEST_MISMATCH' },
        );
      }
      await slots.write(job.slot, {
        bundleId,
        manifestEnvelope: verified.envelopeBytes,
        parts: verified.parts,
      });
      await options.downloads.discard(bundleId);
      dispatch({ type: 'staged', bundleId });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      dispatch({
        type: 'stage-failed',
        bundleId,
        error: errorReport(error, typeof code === 'string' ? code : 'STAGE_FAILED'),
      });
    }
  }

  async function activate(job: UpdateJob, dispatch: Dispatch) {
    const bundleId = job.model.bundleId;
    try {
      const contents = await slots.read(job.slot, bundleId);
      if (!contents)
        throw Object.assign(new Error(`slot ${job.slot} does not hold ${bundleId}`), {
          code: 'SLOT_EMPTY',
        });
      const { manifest } = await verifyManifestEnvelope(
        contents.manifestEnvelope,
        verifyOptions(floorFor(job)),
      );
      // THREATS 40: what the drift monitor will consume is checked before the model may serve.
      slotDrift.set(job.slot, { bundleId, drift: checkDriftProfile(manifest, contents.parts) });
      await host.load(job.slot, contents, manifest);
      const result = await host.selfTest(job.slot);
      if (!result.ok) {
        host.unload(job.slot);
        dispatch({
          type: 'activation-failed',
          bundleId,
          error: { code: 'SELF_TEST_FAILED', message: result.message.slice(0, 1000) },
        });
        return;
      }
      dispatch({ type: 'activated', bundleId });
    } catch (error) {
      host.unload(job.slot);
      const code = (error as { code?: unknown }).code;
      dispatch({
        type: 'activation-failed',
        bundleId,
        error: errorReport(error, typeof code === 'string' ? code : 'ACTIVATION_FAILED'),
      });
    }
  }

  /** Serving needs the slot's model loaded: after a restart it is loaded here. */
  async function serve(action: Extract<UpdateAction, { type: 'serve' }>) {
    const { slot, model } = action;
    const known = slotDrift.get(slot);
    let drift: CheckedDrift | null = known?.bundleId === model.bundleId ? known.drift : null;
    let driftError: unknown = null;
    if (!host.loaded(slot) || known?.bundleId !== model.bundleId) {
      const contents = await slots.read(slot, model.bundleId);
      if (!contents) throw new Error(`slot ${slot} does not hold ${model.bundleId}`);
      const manifest = await installedManifest(contents.manifestEnvelope);
      if (!host.loaded(slot)) await host.load(slot, contents, manifest);
      try {
        drift = checkDriftProfile(manifest, contents.parts);
      } catch (error) {
        driftError = error; // an installed model keeps serving, unmonitored
      }
      slotDrift.set(slot, { bundleId: model.bundleId, drift });
    }
    host.serve(slot, model);
    options.onServe?.(model, drift, driftError);
  }

  /**
   * The manifest of a model installed earlier, its signatures checked again
   * (a slot altered on disk is not loaded) as of its own issue time: expiry
   * and release were judged when it was installed, and an installed model
   * keeps serving after its bundle expires (a device is never bricked).
   */
  async function installedManifest(envelopeBytes: Uint8Array): Promise<Manifest> {
    const envelope = parseEnvelope(envelopeBytes, 256 * 1024, 'installed manifest envelope');
    const claimed = JSON.parse(fromUtf8(fromBase64(envelope.payload))) as { issuedAt?: unknown };
    const issuedAtMs = typeof claimed.issuedAt === 'string' ? Date.parse(claimed.issuedAt) : NaN;
    const { manifest } = await verifyManifestEnvelope(envelopeBytes, {
      ...verifyOptions(0),
      nowMs: Number.isFinite(issuedAtMs) ? issuedAtMs : options.nowMs(),
    });
    return manifest;
  }

  /**
   * Publishing never holds up the machine: an offline agent's reports wait
   * in the MQTT queue. The state message goes every time; a progress message
   * only when the state does not already say the same (rollout, bundle,
   * phase, error), as when a deploy is refused BUSY while another update is
   * on probation: the control plane routes both alike, and the repeat was a
   * third of what a simulated fleet signed and the control plane verified
   * in a rollout.
   */
  function report(action: Extract<UpdateAction, { type: 'report' }>): void {
    const state = options.state();
    void reporter.publishState(state).catch(() => undefined);
    if (!action.rolloutId || !action.bundleId) return;
    const said = stateUpdate(state);
    if (
      said.rolloutId === action.rolloutId &&
      said.bundleId === action.bundleId &&
      sameError(said.error ?? null, action.error)
    )
      return;
    const job = state.job;
    const downloaded = job !== null && job.phase !== 'downloading';
    void reporter
      .publishProgress({
        rolloutId: action.rolloutId,
        bundleId: action.bundleId,
        state: job?.phase ?? state.last?.state ?? 'idle',
        blocksReceived: downloaded ? job.blockCount : 0,
        blockCount: job?.blockCount ?? 1,
        error: action.error,
      })
      .catch(() => undefined);
  }

  return async (action, dispatch) => {
    switch (action.type) {
      case 'check-manifest':
        return checkManifest(action, dispatch);
      case 'download':
        return options.downloader.start(action.job);
      case 'stop-download':
        return options.downloader.stop(action.bundleId, action.discard);
      case 'stage':
        return stage(action.job, dispatch);
      case 'activate':
        return activate(action.job, dispatch);
      case 'serve':
        return serve(action);
      case 'unload':
        host.unload(action.slot);
        return;
      case 'judge-probation': {
        const verdict = host.judgeProbation(action.job.probation);
        // The probation window itself is reported, so the rollout's health gates see it.
        if (verdict.health) void reporter.publishHealth(verdict.health).catch(() => undefined);
        dispatch({
          type: 'probation-judged',
          bundleId: action.job.model.bundleId,
          pass: verdict.pass,
          reason: verdict.reason,
        });
        return;
      }
      case 'report':
        return report(action);
      case 'advance':
        return; // the driver handles it
    }
  };
}

function sameError(a: ErrorReport | null, b: ErrorReport | null): boolean {
  return a === b || (a !== null && b !== null && a.code === b.code && a.message === b.message);
}

function assertSameModel(
  manifest: Manifest,
  model: { name: string; version: string; release: number },
) {
  if (
    manifest.name !== model.name ||
    manifest.version !== model.version ||
    manifest.release !== model.release
  ) {
    throw Object.assign(
      new Error(
        `deploy names ${model.name}@${model.version} (release ${model.release}), the signed manifest ${manifest.name}@${manifest.version} (release ${manifest.release})`,
      ),
      { code: 'MANIFEST_MISMATCH' },
    );
  }
}
