/**
 * `fleet eval-sets push NAME FILE | ls` and `fleet models policy|approve`:
 * held-out eval sets, model risk tiers and promotion policies, and the
 * approval of a federated candidate, all through the control plane API.
 */
import { Command, Option } from 'commander';
import type { CliIo } from '@fleet/bundles';
import { FleetError } from '@fleet/protocol';
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

/** `policy` and `approve` under `fleet models`. */
export function addGovernanceModelCommands(models: Command, io: CliIo, env: CliEnv): Command {
  withUrl(models.command('policy <name>'))
    .description('Show a model’s promotion policy, or change it (admin) with the flags given')
    .addOption(new Option('--risk <tier>', 'risk tier').choices(['low', 'high']))
    .option('--auto-promote', 'promote a better candidate without an approver (low risk only)')
    .option('--no-auto-promote', 'every better candidate waits for an approver')
    .option('--margin <m>', 'accuracy a candidate must gain: 0.5% or 0.005')
    .action(
      async (
        name: string,
        flags: { url?: string; risk?: string; autoPromote?: boolean; margin?: string },
      ) => {
        const api = await createApiClient(flags, env);
        const path = `/v1/models/${encodeURIComponent(name)}/policy`;
        const change = {
          ...(flags.risk ? { riskTier: flags.risk } : {}),
          ...(flags.autoPromote !== undefined ? { autoPromote: flags.autoPromote } : {}),
          ...(flags.margin !== undefined ? { promotionMargin: parseMargin(flags.margin) } : {}),
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
