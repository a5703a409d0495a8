import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeployMessage } from '@fleet/protocol';
import { createMemoryStateStore } from '../adapters/memory/memory-stores.ts';
import type { StateStore } from '../core/storage.ts';
import type { UpdateAction } from '../core/update-machine.ts';
import type { AgentState } from '../core/update-state.ts';
import { createUpdateDriver, type RunAction } from './update-driver.ts';

const T0 = Date.parse('2026-11-27T10:00:00Z');
const bundleId = (r: number) => r.toString(16).padStart(64, '0');

function deploy(release: number): DeployMessage {
  return {
    type: 'deploy',
    id: `cmd-deploy-${release}`,
    schemaVersion: 1,
    ts: new Date(T0).toISOString(),
    rolloutId: 'rollout-0001',
    bundle: {
      bundleId: bundleId(release),
      sizeBytes: 100,
      blockSizeBytes: 64,
      blockCount: 2,
      blockRoot: 'ab'.repeat(32),
      manifestEnvelope: {
        payloadType: 'application/vnd.fleet.bundle-manifest+json',
        payload: 'e30=',
        signatures: [],
      },
    },
    model: { name: 'm', version: `1.${release}.0`, release },
    deadline: new Date(T0 + 600_000).toISOString(),
    probation: { durationMs: 1_000, maxErrorRate: 0.1, maxLatencyP95Ms: 100, minMeanConfidence: 0 },
  };
}

/** Effects that always succeed at once, recording what ran; `serving` is what a runtime would serve. */
function happyEffects(log: UpdateAction[], serving: { bundleId: string | null }): RunAction {
  return (action, dispatch) => {
    log.push(action);
    switch (action.type) {
      case 'check-manifest':
        dispatch({
          type: 'manifest-checked',
          command: action.command,
          result: {
            ok: true,
            model: { ...action.command.model, bundleId: action.command.bundle.bundleId },
          },
        });
        break;
      case 'download':
        dispatch({ type: 'download-complete', bundleId: action.job.model.bundleId });
        break;
      case 'stage':
        dispatch({ type: 'staged', bundleId: action.job.model.bundleId });
        break;
      case 'activate':
        dispatch({ type: 'activated', bundleId: action.job.model.bundleId });
        break;
      case 'judge-probation':
        dispatch({
          type: 'probation-judged',
          bundleId: action.job.model.bundleId,
          pass: true,
          reason: 'ok',
        });
        break;
      case 'serve':
        serving.bundleId = action.model.bundleId;
        break;
      default:
        break;
    }
    return Promise.resolve();
  };
}

/** A store that loses power after `saves` successful saves: later saves throw. */
function cutAfter(store: StateStore, saves: number): StateStore {
  let left = saves;
  return {
    load: () => store.load(),
    save: (state: AgentState) => {
      if (left-- <= 0) return Promise.reject(new Error('power cut'));
      return store.save(state);
    },
  };
}

async function updateTo(release: number, store: StateStore, clock: { now: number }) {
  const log: UpdateAction[] = [];
  const serving = { bundleId: null as string | null };
  const driver = createUpdateDriver({
    store,
    run: happyEffects(log, serving),
    nowMs: () => clock.now,
  });
  await driver.start();
  await driver.dispatch({ type: 'deploy', command: deploy(release) });
  clock.now += 1_000;
  await driver.dispatch({ type: 'tick' });
  return { driver, log, serving };
}

test('the driver persists each step before its actions and reports success after the commit', async () => {
  const saved: AgentState[] = [];
  const memory = createMemoryStateStore();
  const store: StateStore = {
    load: () => memory.load(),
    save: (s) => (saved.push(s), memory.save(s)),
  };
  const { driver, log, serving } = await updateTo(1, store, { now: T0 });
  assert.equal(driver.state().committed?.ref.release, 1);
  assert.equal(serving.bundleId, bundleId(1));
  assert.deepEqual(
    saved.map((s) => s.job?.phase ?? s.last?.state),
    [undefined, 'downloading', 'verifying', 'staged', 'activating', 'probation', 'committed'],
  );
  // The last report (success) comes after the committed state was saved.
  assert.equal(log.at(-1)?.type, 'report');
  assert.equal(saved.at(-1)?.committed?.ref.release, 1);
});

test('a power cut after every persisted step of an update ends, after a restart, with a good model serving', async () => {
  for (let saves = 0; saves <= 7; saves++) {
    const memory = createMemoryStateStore();
    const clock = { now: T0 };
    await updateTo(1, memory, clock); // release 1 committed
    // Release 2, with the power cut after `saves` more saves.
    const crashed = await updateTo(2, cutAfter(memory, saves), clock);
    crashed.driver.stop();
    // Restart on the same store: boot, then time passes so any job can finish or fail.
    const log: UpdateAction[] = [];
    const serving = { bundleId: null as string | null };
    const restarted = createUpdateDriver({
      store: memory,
      run: happyEffects(log, serving),
      nowMs: () => clock.now,
    });
    await restarted.start();
    clock.now += 2_000;
    await restarted.dispatch({ type: 'tick' });
    const state = restarted.state();
    assert.equal(state.job, null, `cut after ${saves} saves: no update left hanging`);
    assert.ok([1, 2].includes(state.committed!.ref.release), `cut after ${saves}`);
    assert.equal(
      serving.bundleId,
      state.committed!.ref.bundleId,
      `cut after ${saves}: the committed model serves`,
    );
  }
});
