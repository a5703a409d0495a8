/**
 * The rollout routing cache's answer to "which active rollouts is this device
 * in" (where its health report goes): from memory for a device this process
 * knows is in every active rollout, from the database otherwise, and never a
 * rollout that has ended.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RolloutStore } from '../adapters/db/rollout-store.ts';
import type { RolloutSnapshot } from '../core/rollouts/rollout-types.ts';
import { createRoutingCache } from './rollout-routing.ts';

const model = (release: number) => ({
  name: 'digits',
  version: `1.${release}.0`,
  release,
  bundleId: String(release).repeat(64).slice(0, 64),
});

const snapshot = (id: string, release: number, status: RolloutSnapshot['status'] = 'running') =>
  ({ id, model: model(release), selector: { all: true }, status }) as unknown as RolloutSnapshot;

/** A store answering the active ids and memberships it is given, counting its queries. */
function fakeStore(active: string[], memberships: Map<string, RolloutSnapshot[]>) {
  const queries: string[] = [];
  const store = {
    activeRolloutIds: () => Promise.resolve([...active]),
    rolloutsForDevice: (deviceId: string) => {
      queries.push(deviceId);
      return Promise.resolve((memberships.get(deviceId) ?? []).map((rollout) => ({ rollout })));
    },
  } as unknown as RolloutStore;
  return { store, queries };
}

describe('rollout routing: member rollouts', () => {
  it('answers from memory for a device known in every active rollout, and asks the database otherwise', async () => {
    const r1 = snapshot('r-1', 3);
    const { store, queries } = fakeStore(['r-1'], new Map([['d-3', [r1]]]));
    const routing = createRoutingCache(store, () => 0, 60_000);
    routing.stepped({ rollout: r1, devices: [{ deviceId: 'd-1' }, { deviceId: 'd-2' }] });

    assert.deepEqual(await routing.memberRollouts('d-1'), [{ id: 'r-1', model: model(3) }]);
    assert.deepEqual(queries, [], 'a known member costs no query');

    // Not known here (it joined through another replica): the database says.
    assert.deepEqual(await routing.memberRollouts('d-3'), [{ id: 'r-1', model: model(3) }]);
    assert.deepEqual(await routing.memberRollouts('d-9'), []);
    assert.deepEqual(queries, ['d-3', 'd-9']);
  });

  it('asks the database when a second rollout is active that the device is not known in', async () => {
    const r1 = snapshot('r-1', 3);
    const r2 = snapshot('r-2', 4);
    const { store, queries } = fakeStore(['r-1', 'r-2'], new Map([['d-1', [r1, r2]]]));
    const routing = createRoutingCache(store, () => 0, 60_000);
    routing.stepped({ rollout: r1, devices: [{ deviceId: 'd-1' }] });
    routing.stepped({ rollout: r2, devices: [{ deviceId: 'd-2' }] });
    assert.deepEqual(
      (await routing.memberRollouts('d-1')).map((r) => r.id),
      ['r-1', 'r-2'],
    );
    assert.deepEqual(queries, ['d-1']);
  });

  it('drops a rollout that has ended', async () => {
    const active = ['r-1'];
    const { store, queries } = fakeStore(active, new Map());
    const routing = createRoutingCache(store, () => 0, 60_000);
    routing.stepped({ rollout: snapshot('r-1', 3), devices: [{ deviceId: 'd-1' }] });
    assert.equal((await routing.memberRollouts('d-1')).length, 1);
    active.length = 0;
    routing.stepped({ rollout: snapshot('r-1', 3, 'completed'), devices: [{ deviceId: 'd-1' }] });
    assert.deepEqual(await routing.memberRollouts('d-1'), []);
    assert.deepEqual(queries, []);
  });
});
