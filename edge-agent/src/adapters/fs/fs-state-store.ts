/**
 * The agent's update state as one JSON file, replaced atomically (temp file,
 * fsync, rename, fsync the directory) on every save: after a power cut the
 * file holds the state before the save or after it (THREATS 19).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FleetError } from '@fleet/protocol';
import { writeFileAtomic } from '@fleet/protocol/node';
import type { StateStore } from '../../core/storage.ts';
import { agentStateSchema, initialAgentState, type AgentState } from '../../core/update-state.ts';

export const STATE_FILE = 'update-state.json';

export function createFsStateStore(dataDir: string): StateStore {
  const path = join(dataDir, STATE_FILE);
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return initialAgentState();
        throw error;
      }
      return parseState(text, path);
    },
    async save(state) {
      await writeFileAtomic(path, JSON.stringify(state));
    },
  };
}

function parseState(text: string, path: string): AgentState {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new FleetError('AGENT_STATE_CORRUPT', `${path} is not JSON`, { cause });
  }
  const parsed = agentStateSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FleetError(
      'AGENT_STATE_CORRUPT',
      `${path}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}
