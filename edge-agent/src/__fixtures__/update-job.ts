/**
 * Test fixture: an update job in a given phase, with one-block transfer
 * fields and the default probation; tests override what they look at.
 */
import { DEFAULT_PROBATION } from '../core/update-machine.ts';
import type { UpdateJob } from '../core/update-state.ts';

export function updateJob(
  phase: UpdateJob['phase'],
  fields: Partial<UpdateJob> & Pick<UpdateJob, 'rolloutId' | 'commandId' | 'model'>,
): UpdateJob {
  return {
    sizeBytes: 1,
    blockSizeBytes: 1,
    blockCount: 1,
    blockRoot: 'ab'.repeat(32),
    manifestEnvelope: '',
    phase,
    slot: 'b',
    startedAtMs: 0,
    deadlineMs: 60_000,
    probation: DEFAULT_PROBATION,
    probationStartedAtMs: null,
    authorizedRollback: false,
    ...fields,
  };
}
