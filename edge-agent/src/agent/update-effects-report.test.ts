/**
 * The `report` action: the retained state message goes after every
 * transition, and a progress message only when the state does not already
 * say the same thing (rollout, bundle, phase, error); the control plane
 * routes both alike.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ErrorReport } from '@fleet/protocol';
import {
  createMemoryDownloadStore,
  createMemorySlotStore,
} from '../adapters/memory/memory-stores.ts';
import { updateJob } from '../__fixtures__/update-job.ts';
import type { ModelHost } from '../core/model-host.ts';
import { initialAgentState, type AgentState, type UpdateJob } from '../core/update-state.ts';
import type { BlockDownloader } from './block-downloader.ts';
import type { ProgressReport, Reporter } from './reporter.ts';
import { createUpdateEffects } from './update-effects.ts';

const job = (phase: UpdateJob['phase']): UpdateJob =>
  updateJob(phase, {
    rolloutId: 'r-1',
    commandId: 'cmd-1',
    model: { name: 'm', version: '2.0.0', release: 2, bundleId: 'b1'.repeat(32) },
  });

const BUSY: ErrorReport = { code: 'BUSY', message: 'another update is on probation' };

async function report(
  state: AgentState,
  action: { rolloutId: string; bundleId: string; error: ErrorReport | null },
) {
  const sent: Array<'state' | ProgressReport> = [];
  const reporter = {
    publishState: () => Promise.resolve(void sent.push('state')),
    publishProgress: (p: ProgressReport) => Promise.resolve(void sent.push(p)),
  } as unknown as Reporter;
  const run = createUpdateEffects({
    deviceId: 'dev-report-01',
    hardware: 'sim',
    agentVersion: '0.1.0',
    trustRoot: () => {
      throw new Error('not used');
    },
    nowMs: () => 0,
    downloads: createMemoryDownloadStore(),
    slots: createMemorySlotStore(),
    downloader: {} as BlockDownloader,
    host: {} as ModelHost,
    reporter,
    state: () => state,
  });
  await run({ type: 'report', ...action }, () => undefined);
  return sent;
}

test('a transition of the update the state describes is reported by the state message alone', async () => {
  const state = { ...initialAgentState(), job: job('verifying') };
  const sent = await report(state, { rolloutId: 'r-1', bundleId: 'b1'.repeat(32), error: null });
  assert.deepEqual(sent, ['state']);
});

test('an update that ended with an error the state carries is reported by the state alone', async () => {
  const state: AgentState = {
    ...initialAgentState(),
    last: { rolloutId: 'r-1', bundleId: 'b1'.repeat(32), state: 'idle', error: BUSY, atMs: 0 },
  };
  const sent = await report(state, { rolloutId: 'r-1', bundleId: 'b1'.repeat(32), error: BUSY });
  assert.deepEqual(sent, ['state']);
});

test('a report about another rollout than the state describes also goes as progress', async () => {
  // A deploy refused while another update is on probation: the state speaks of that one.
  const state = { ...initialAgentState(), job: job('probation') };
  const sent = await report(state, { rolloutId: 'r-2', bundleId: 'b2'.repeat(32), error: BUSY });
  assert.equal(sent.length, 2);
  assert.equal(sent[0], 'state');
  assert.deepEqual(sent[1], {
    rolloutId: 'r-2',
    bundleId: 'b2'.repeat(32),
    state: 'probation',
    blocksReceived: 1,
    blockCount: 1,
    error: BUSY,
  });
});

test('an error the state does not carry also goes as progress', async () => {
  const state = { ...initialAgentState(), job: job('downloading') };
  const error = { code: 'DISCONNECTED', message: 'cannot subscribe' };
  const sent = await report(state, { rolloutId: 'r-1', bundleId: 'b1'.repeat(32), error });
  assert.equal(sent.length, 2);
  assert.equal((sent[1] as ProgressReport).error, error);
});
