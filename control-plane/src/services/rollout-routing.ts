import type { RolloutStore } from '../adapters/db/rollout-store.ts';
import type { RolloutSnapshot, TargetSelector } from '../core/rollouts/rollout-types.ts';

/**
 * What this process knows of the active rollouts, so that routing a device's
 * state message (does it join a rollout?) needs no query in the common case:
 *   - the active rollout ids, re-read at most once per `ttlMs` and at once
 *     after a rollout starts or ends here (one started by another replica is
 *     seen within `ttlMs`);
 *   - each rollout's members as far as known (membership only grows: a device
 *     never leaves a rollout), from this process's own steps; a device not
 *     known as a member is looked up in the database as before;
 *   - each rollout's target selector (it never changes).
 */
export function createRoutingCache(store: RolloutStore, nowMs: () => number, ttlMs: number) {
  let active: { ids: string[]; atMs: number } | null = null;
  const members = new Map<string, Set<string>>();
  const selectors = new Map<string, TargetSelector>();
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
      return ids;
    },
    /** After a step (or the start) of a rollout in this process. */
    stepped(state: { rollout: RolloutSnapshot; devices: readonly { deviceId: string }[] }): void {
      const { rollout } = state;
      if (!isActive(rollout.status)) {
        members.delete(rollout.id);
        selectors.delete(rollout.id);
        active = null;
        return;
      }
      if (!members.has(rollout.id)) active = null; // new here: re-read the active ids
      const known = members.get(rollout.id) ?? new Set<string>();
      if (known.size !== state.devices.length) for (const d of state.devices) known.add(d.deviceId);
      members.set(rollout.id, known);
      selectors.set(rollout.id, rollout.selector);
    },
    isMember: (id: string, deviceId: string) => members.get(id)?.has(deviceId) ?? false,
    addMember(id: string, deviceId: string): void {
      members.get(id)?.add(deviceId);
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
