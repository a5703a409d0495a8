import type { RolloutStore } from '../adapters/db/rollout-store.ts';
import type { RolloutSnapshot, TargetSelector } from '../core/rollouts/rollout-types.ts';

/** The rollouts a device belongs to, as its health report needs them. */
export type MemberRollout = { id: string; model: RolloutSnapshot['model'] };

/**
 * What this process knows of the active rollouts, so that routing a device's
 * state message (does it join a rollout?) needs no query in the common case:
 *   - the active rollout ids, re-read at most once per `ttlMs` and at once
 *     after a rollout starts or ends here (one started by another replica is
 *     seen within `ttlMs`);
 *   - each rollout's members as far as known (membership only grows: a device
 *     never leaves a rollout), from this process's own steps; a device not
 *     known as a member is looked up in the database as before;
 *   - each rollout's target selector and model (they never change).
 *
 * A device's health report goes to the active rollouts it is in
 * (`memberRollouts`); when this process knows it is in every active one, no
 * query is made. A thousand devices on probation report once each, and each
 * report was a join of rollout_devices and rollouts.
 */
export function createRoutingCache(store: RolloutStore, nowMs: () => number, ttlMs: number) {
  let active: { ids: string[]; atMs: number } | null = null;
  const members = new Map<string, Set<string>>();
  const selectors = new Map<string, TargetSelector>();
  const models = new Map<string, RolloutSnapshot['model']>();
  const isActive = (status: RolloutSnapshot['status']) =>
    status === 'running' || status === 'paused';

  return {
    async activeIds(): Promise<string[]> {
      if (active && nowMs() - active.atMs < ttlMs) return active.ids;
      const ids = await store.activeRolloutIds();
      active = { ids, atMs: nowMs() };
      const live = new Set(ids);
      for (const id of [...members.keys()]) if (!live.has(id)) members.delete(id);
      for (const id of [...selectors.keys()]) if (!live.has(id)) selectors.delete(id);
      for (const id of [...models.keys()]) if (!live.has(id)) models.delete(id);
      return ids;
    },
    /** After a step (or the start) of a rollout in this process. */
    stepped(state: { rollout: RolloutSnapshot; devices: readonly { deviceId: string }[] }): void {
      const { rollout } = state;
      if (!isActive(rollout.status)) {
        members.delete(rollout.id);
        selectors.delete(rollout.id);
        models.delete(rollout.id);
        active = null;
        return;
      }
      if (!members.has(rollout.id)) active = null; // new here: re-read the active ids
      const known = members.get(rollout.id) ?? new Set<string>();
      if (known.size !== state.devices.length) for (const d of state.devices) known.add(d.deviceId);
      members.set(rollout.id, known);
      selectors.set(rollout.id, rollout.selector);
      models.set(rollout.id, rollout.model);
    },
    isMember: (id: string, deviceId: string) => members.get(id)?.has(deviceId) ?? false,
    addMember(id: string, deviceId: string): void {
      members.get(id)?.add(deviceId);
    },
    /** The active rollouts `deviceId` is in: from memory when it is a known member of each. */
    async memberRollouts(deviceId: string): Promise<MemberRollout[]> {
      const ids = await this.activeIds();
      const known = ids.flatMap((id) => {
        const model = models.get(id);
        return model && members.get(id)?.has(deviceId) ? [{ id, model }] : [];
      });
      if (known.length === ids.length) return known;
      return (await store.rolloutsForDevice(deviceId)).map(({ rollout }) => ({
        id: rollout.id,
        model: rollout.model,
      }));
    },
    async selector(id: string): Promise<TargetSelector | null> {
      const cached = selectors.get(id);
      if (cached) return cached;
      const rollout = (await store.get(id))?.rollout;
      if (!rollout) return null;
      selectors.set(id, rollout.selector);
      return rollout.selector;
    },
  };
}
