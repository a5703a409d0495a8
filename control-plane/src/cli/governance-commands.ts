/**
 * `fleet eval-sets push NAME FILE | ls` and `fleet models policy|approve`:
 * held-out eval sets, model risk tiers, promotion policies and round
 * triggers (on drift, on a schedule), and the approval of a federated
 * candidate, all through the control plane API.
 */
import { Command, Option } from 'commander';
import type { CliIo } from '@fleet/bundles';
import { FleetError } from '@fleet/protocol';
import { parseDuration } from '../core/rollouts/rollout-spec.ts';
import { createApiClient, type CliEnv } from './api-client.ts';
import { print, readFileArg, withUrl } from './command-helpers.ts';

export function evalSetsCommand(io: CliIo, env: CliEnv): Command {
  const evalSets = new Command('eval-sets').description(
    'Held-out evaluation sets federated candidates are scored on',
  );
  withUrl(evalSets.command('push <name> <file>'))
    .description('Upload (or replace) a labelled .fleval file (fleet data export writes one)')
    .action(async (name: string, path: string, flags: { url?: string }) => {
      const api = await createApiClient(flags, env);
      const body = await readFileArg(path, 'eval set');
      print(io, await api.request('PUT', `/v1/eval-sets/${encodeURIComponent(name)}`, { body }));
    });
  withUrl(evalSets.command('ls'))
    .description('Eval sets with their sample, feature and class counts')
    .action(async (flags: { url?: string }) => {
      print(io, await (await createApiClient(flags, env)).request('GET', '/v1/eval-sets'));
    });
  return evalSets;
}

/** A margin as `0.5%` or `0.005`. */
function parseMargin(text: string): number {
  const percent = text.endsWith('%');
  const value = Number(percent ? text.slice(0, -1) : text) / (percent ? 100 : 1);
  if (!Number.isFinite(value) || value < 0 || value >= 1) {
    throw new FleetError('INVALID_REQUEST', `--margin ${text}: expected 0.5% or 0.005 (in [0, 1))`);
  }
  return value;
}

/** A flag's JSON object value. */
function jsonObject(flag: string, text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FleetError(
      'INVALID_REQUEST',
      `--${flag}: expected a JSON object, e.g. '{"epochs":2}'`,
    );
  }
  return value as Record<string, unknown>;
}

const ms = (flag: string, text: string | undefined) =>
  text === undefined ? undefined : parseDuration(text, `--${flag}`);

interface TriggerFlags {
  flOnDrift?: boolean;
  flOnDriftEvalSet?: string;
  flOnDriftConfig?: string;
  flOnDriftRollout?: string;
  flOnDriftCooldown?: string;
  flSchedule?: boolean;
  flEvery?: string;
  flScheduleEvalSet?: string;
  flScheduleTarget?: string;
  flScheduleConfig?: string;
  flScheduleRollout?: string;
}

/** `flOnDrift` and `flSchedule` of the policy change from the flags (absent: unchanged). */
export function triggerChange(flags: TriggerFlags): Record<string, unknown> {
  const change: Record<string, unknown> = {};
  const drift = [flags.flOnDriftConfig, flags.flOnDriftRollout, flags.flOnDriftCooldown];
  if (flags.flOnDrift === false) {
    if (flags.flOnDriftEvalSet !== undefined || drift.some((v) => v !== undefined)) {
      throw new FleetError('INVALID_REQUEST', '--no-fl-on-drift: no other --fl-on-drift-* flag');
    }
    change['flOnDrift'] = null;
  } else if (flags.flOnDriftEvalSet !== undefined) {
    const config = jsonObject('fl-on-drift-config', flags.flOnDriftConfig);
    const rollout = jsonObject('fl-on-drift-rollout', flags.flOnDriftRollout);
    const cooldownMs = ms('fl-on-drift-cooldown', flags.flOnDriftCooldown);
    change['flOnDrift'] = {
      evalSet: flags.flOnDriftEvalSet,
      config: config ?? {},
      ...(rollout ? { rollout } : {}),
      ...(cooldownMs !== undefined ? { cooldownMs } : {}),
    };
  } else if (drift.some((v) => v !== undefined)) {
    throw new FleetError('INVALID_REQUEST', '--fl-on-drift-*: --fl-on-drift-eval-set is needed');
  }
  const schedule = [
    flags.flEvery,
    flags.flScheduleEvalSet,
    flags.flScheduleTarget,
    flags.flScheduleConfig,
    flags.flScheduleRollout,
  ];
  if (flags.flSchedule === false) {
    if (schedule.some((v) => v !== undefined)) {
      throw new FleetError('INVALID_REQUEST', '--no-fl-schedule: no other schedule flag');
    }
    change['flSchedule'] = null;
  } else if (schedule.some((v) => v !== undefined)) {
    if (!flags.flEvery || !flags.flScheduleEvalSet || !flags.flScheduleTarget) {
      throw new FleetError(
        'INVALID_REQUEST',
        'a schedule needs --fl-every, --fl-schedule-eval-set and --fl-schedule-target',
      );
    }
    const rollout = jsonObject('fl-schedule-rollout', flags.flScheduleRollout);
    change['flSchedule'] = {
      everyMs: ms('fl-every', flags.flEvery),
      evalSet: flags.flScheduleEvalSet,
      target: flags.flScheduleTarget,
      config: jsonObject('fl-schedule-config', flags.flScheduleConfig) ?? {},
      ...(rollout ? { rollout } : {}),
    };
  }
  return change;
}

/** `policy` and `approve` under `fleet models`. */
export function addGovernanceModelCommands(models: Command, io: CliIo, env: CliEnv): Command {
  withUrl(models.command('policy <name>'))
    .description('Show a model’s promotion policy, or change it (admin) with the flags given')
    .addOption(new Option('--risk <tier>', 'risk tier').choices(['low', 'high']))
    .option('--auto-promote', 'promote a better candidate without an approver (low risk only)')
    .option('--no-auto-promote', 'every better candidate waits for an approver')
    .option('--margin <m>', 'accuracy a candidate must gain: 0.5% or 0.005')
    .option(
      '--fl-on-drift-eval-set <name>',
      'a drift alert starts a round on its cohort, judged on this eval set',
    )
    .option(
      '--fl-on-drift-config <json>',
      'round config of drift-started rounds, e.g. {"epochs":2}',
    )
    .option(
      '--fl-on-drift-rollout <json>',
      'rollout template of their candidates, e.g. {"waves":"10%,all"}',
    )
    .option(
      '--fl-on-drift-cooldown <duration>',
      'least time between drift-started rounds (default 1h)',
    )
    .option('--no-fl-on-drift', 'drift alerts start no round')
    .option('--fl-every <duration>', 'start a round every this long, e.g. 1d')
    .option('--fl-schedule-eval-set <name>', 'eval set of scheduled rounds')
    .option('--fl-schedule-target <selector>', 'devices of scheduled rounds: all, tag:k=v, ...')
    .option('--fl-schedule-config <json>', 'round config of scheduled rounds')
    .option('--fl-schedule-rollout <json>', 'rollout template of their candidates')
    .option('--no-fl-schedule', 'no scheduled rounds')
    .action(
      async (
        name: string,
        flags: TriggerFlags & {
          url?: string;
          risk?: string;
          autoPromote?: boolean;
          margin?: string;
        },
      ) => {
        const api = await createApiClient(flags, env);
        const path = `/v1/models/${encodeURIComponent(name)}/policy`;
        const change = {
          ...(flags.risk ? { riskTier: flags.risk } : {}),
          ...(flags.autoPromote !== undefined ? { autoPromote: flags.autoPromote } : {}),
          ...(flags.margin !== undefined ? { promotionMargin: parseMargin(flags.margin) } : {}),
          ...triggerChange(flags),
        };
        print(
          io,
          Object.keys(change).length === 0
            ? await api.request('GET', path)
            : await api.request('PUT', path, { json: change }),
        );
      },
    );
  withUrl(models.command('approve <name@version>'))
    .description('Approve a federated candidate awaiting approval (approver): its rollout starts')
    .action(async (text: string, flags: { url?: string }) => {
      const match = /^([a-z0-9][a-z0-9._-]*)@([0-9][0-9A-Za-z.+-]*)$/.exec(text);
      if (!match) {
        throw new FleetError(
          'INVALID_REQUEST',
          `${text}: expected NAME@VERSION, e.g. mnist-2nn@1.3.0`,
        );
      }
      const [, name, version] = match as unknown as [string, string, string];
      const api = await createApiClient(flags, env);
      const release = /^\d+$/.test(version) ? Number(version) : await releaseOf(api, name, version);
      print(io, await api.request('POST', `/v1/models/${name}/versions/${release}/approve`));
    });
  return models;
}

async function releaseOf(
  api: Awaited<ReturnType<typeof createApiClient>>,
  name: string,
  version: string,
): Promise<number> {
  const { versions } = await api.request<{ versions: Array<{ version: string; release: number }> }>(
    'GET',
    `/v1/models/${encodeURIComponent(name)}/versions`,
  );
  const row = versions.find((v) => v.version === version);
  if (!row) throw new FleetError('NOT_FOUND', `${name}@${version} is not registered`);
  return row.release;
}
