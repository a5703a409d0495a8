/**
 * What a federated round starts from, read and checked for the round
 * service (fl-rounds.ts): the devices it may select, and its rollout
 * template (checked as `POST /v1/rollouts` checks a body, without `model`).
 */
import { buildPolicy } from '../core/rollouts/rollout-spec.ts';
import type { TargetSelector } from '../core/rollouts/rollout-types.ts';
import { buildSelector, matchesSelector, parseSelector } from '../core/rollouts/target-selector.ts';
import type { CandidateDevice } from '../core/fl/round-selection.ts';
import { controlPlaneError } from '../core/errors.ts';
import { isFleetError } from '@fleet/protocol';
import type { DeviceStore } from '../adapters/db/device-store.ts';

const PAGE = 1_000;

/**
 * Every unrevoked device the selector's tags could match, as the round core
 * sees it: `matchesTarget` when it matches the selector and runs the base
 * bundle; `labelledSamples` the count it last reported in a health report
 * (`feedback.stored`), so the core skips one under the round's `minSamples`.
 * A device that never reported it (periodic health off, an older agent) is
 * unknown and counted as having enough: it declines with a failed update
 * when it has too few. A reported count may be one health interval old.
 */
export async function eligibleDevices(
  deviceStore: DeviceStore,
  selector: TargetSelector,
  baseBundleId: string,
): Promise<CandidateDevice[]> {
  const out: CandidateDevice[] = [];
  let afterId: string | undefined;
  for (;;) {
    const page = await deviceStore.list({
      tags: selector.tags ?? {},
      limit: PAGE,
      ...(afterId ? { afterId } : {}),
    });
    for (const row of page) {
      if (row.revokedAt) continue;
      const matches = matchesSelector(
        { id: row.id, hardware: row.hardware, tags: row.tags },
        selector,
      );
      out.push({
        deviceId: row.id,
        online: row.online,
        labelledSamples: row.labelledSamples ?? Number.MAX_SAFE_INTEGER,
        matchesTarget: matches && row.bundleId === baseBundleId,
      });
    }
    if (page.length < PAGE) return out;
    afterId = page.at(-1)!.id;
  }
}

/**
 * Checks a rollout template (`target` optional, the rest rollout policy
 * fields) and returns it as given; INVALID_REQUEST naming `rollout.<field>`.
 */
export function checkRolloutTemplate(template: Record<string, unknown>): Record<string, unknown> {
  const { target, ...policy } = template;
  try {
    buildPolicy(policy);
    if (typeof target === 'string') parseSelector(target);
    else if (target !== undefined) buildSelector(target);
  } catch (error) {
    if (isFleetError(error)) {
      const message = error.message.slice(error.code.length + 2); // without "CODE: "
      throw controlPlaneError('INVALID_REQUEST', `rollout.${message}`);
    }
    throw error;
  }
  return template;
}
