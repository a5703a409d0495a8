/**
 * `fleet models|tokens|audit|trust|login`, and the list of every operator
 * command group (with device-commands.ts): all through the control plane API
 * (`--url`, token from `FLEET_TOKEN` or the file `fleet login` writes).
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { rolloutCommand } from './rollout-commands.ts';
import { flCommand } from './fl-commands.ts';
import { driftCommand } from './drift-commands.ts';
import { addGovernanceModelCommands, evalSetsCommand } from './governance-commands.ts';
import { Command, Option } from 'commander';
import { writeFileAtomic, type CliIo } from '@fleet/bundles';
import { FleetError } from '@fleet/protocol';
import { OPERATOR_ROLES } from '../core/auth/operator-tokens.ts';
import { createApiClient, readCliConfig, type CliEnv } from './api-client.ts';
import { print, readFileArg, withUrl } from './command-helpers.ts';
import { devicesCommand, enrolTokenCommand } from './device-commands.ts';

function modelsCommand(io: CliIo, env: CliEnv): Command {
  const models = new Command('models').description('The model registry');
  withUrl(models.command('push <bundle>'))
    .description('Upload a signed bundle (verified against the trust root first)')
    .action(async (path: string, flags: { url?: string }) => {
      const api = await createApiClient(flags, env);
      print(
        io,
        await api.request('POST', '/v1/models', { body: await readFileArg(path, 'bundle') }),
      );
    });
  withUrl(models.command('ls [name]'))
    .description('Models, or the versions of one')
    .action(async (name: string | undefined, flags: { url?: string }) => {
      const api = await createApiClient(flags, env);
      print(
        io,
        await api.request(
          'GET',
          name ? `/v1/models/${encodeURIComponent(name)}/versions` : '/v1/models',
        ),
      );
    });
  const ref = (text: string) => {
    const match = /^([a-z0-9][a-z0-9._-]*)@(\d+)$/.exec(text);
    if (!match)
      throw new FleetError('INVALID_REQUEST', `${text}: expected NAME@RELEASE, e.g. mnist-2nn@3`);
    return `/v1/models/${match[1]}/versions/${match[2]}`;
  };
  withUrl(models.command('show <name@release>'))
    .description('One version: manifest, quantization report, lineage')
    .action(async (text: string, flags: { url?: string }) => {
      const api = await createApiClient(flags, env);
      print(io, await api.request('GET', ref(text)));
    });
  withUrl(models.command('lineage <name@release>'))
    .description('The version and its ancestors')
    .action(async (text: string, flags: { url?: string }) => {
      const api = await createApiClient(flags, env);
      print(io, await api.request('GET', `${ref(text)}/lineage`));
    });
  return models;
}

function tokensCommand(io: CliIo, env: CliEnv): Command {
  const tokens = new Command('tokens').description('Operator API tokens (admin)');
  withUrl(tokens.command('create'))
    .description('Create a token (its secret is printed once)')
    .addOption(new Option('--role <role>', 'role').choices(OPERATOR_ROLES).makeOptionMandatory())
    .requiredOption('--name <name>', 'who or what it is for')
    .action(async (flags: { url?: string; role: string; name: string }) => {
      const api = await createApiClient(flags, env);
      print(
        io,
        await api.request('POST', '/v1/tokens', { json: { name: flags.name, role: flags.role } }),
      );
    });
  withUrl(tokens.command('ls')).action(async (flags: { url?: string }) => {
    print(io, await (await createApiClient(flags, env)).request('GET', '/v1/tokens'));
  });
  withUrl(tokens.command('revoke <id>')).action(async (id: string, flags: { url?: string }) => {
    print(
      io,
      await (
        await createApiClient(flags, env)
      ).request('POST', `/v1/tokens/${encodeURIComponent(id)}/revoke`),
    );
  });
  return tokens;
}

function auditCommand(io: CliIo, env: CliEnv): Command {
  const audit = new Command('audit').description('The hash-chained audit log');
  withUrl(audit.command('verify'))
    .description('Replay the chain; exit 1 naming the first edited, missing or cut-off row')
    .option('--expect-head <seq:hash>', 'a head recorded earlier: also catches a cut-off tail')
    .action(async (flags: { url?: string; expectHead?: string }) => {
      const api = await createApiClient(flags, env);
      const query = new URLSearchParams();
      if (flags.expectHead) {
        const [seq, hash] = flags.expectHead.split(':');
        query.set('headSeq', seq ?? '');
        query.set('headHash', hash ?? '');
      }
      const verdict = await api.request<{ ok: boolean; seq?: number; problem?: string }>(
        'GET',
        `/v1/audit/verify?${query.toString()}`,
      );
      if (!verdict.ok) {
        // runCli prints { ok: false, code, message } with the row and problem.
        throw new FleetError(
          'AUDIT_BROKEN',
          `audit log broken at row ${verdict.seq}: ${verdict.problem}`,
        );
      }
      print(io, verdict);
    });
  withUrl(audit.command('ls'))
    .option('--after <seq>', 'entries after this sequence number', '0')
    .option('--limit <n>', 'how many', '100')
    .action(async (flags: { url?: string; after: string; limit: string }) => {
      const api = await createApiClient(flags, env);
      print(
        io,
        await api.request(
          'GET',
          `/v1/audit?after=${Number(flags.after)}&limit=${Number(flags.limit)}`,
        ),
      );
    });
  return audit;
}

function trustCommand(io: CliIo, env: CliEnv): Command {
  const trust = new Command('trust').description(
    'The trust root the control plane verifies bundles with',
  );
  withUrl(trust.command('push <root.json>'))
    .description(
      'Install the first root, or the next rotation (e.g. KEYS/root.json after fleet keys rotate)',
    )
    .action(async (path: string, flags: { url?: string }) => {
      const api = await createApiClient(flags, env);
      print(
        io,
        await api.request('PUT', '/v1/trust/root', { body: await readFileArg(path, 'root') }),
      );
    });
  withUrl(trust.command('show')).action(async (flags: { url?: string }) => {
    print(io, await (await createApiClient(flags, env)).request('GET', '/v1/trust/root'));
  });
  return trust;
}

function loginCommand(io: CliIo, env: CliEnv): Command {
  return new Command('login')
    .description(
      `Save the API URL and a token for later commands (in ${env.configPath}, mode 0600)`,
    )
    .requiredOption('--url <url>', 'control plane URL')
    .requiredOption('--token-file <path>', 'file holding the token (keeps it out of shell history)')
    .action(async (flags: { url: string; tokenFile: string }) => {
      const token = new TextDecoder()
        .decode(await readFileArg(flags.tokenFile, 'token file'))
        .trim();
      const config = { ...(await readCliConfig(env.configPath)), url: flags.url, token };
      await mkdir(dirname(env.configPath), { recursive: true });
      await writeFileAtomic(env.configPath, `${JSON.stringify(config, null, 2)}\n`, {
        mode: 0o600,
      });
      print(io, { ok: true, url: flags.url, configPath: env.configPath });
    });
}

export function registryCommands(io: CliIo, env: CliEnv): Command[] {
  return [
    devicesCommand(io, env),
    enrolTokenCommand(io, env),
    addGovernanceModelCommands(modelsCommand(io, env), io, env),
    evalSetsCommand(io, env),
    tokensCommand(io, env),
    auditCommand(io, env),
    trustCommand(io, env),
    loginCommand(io, env),
    rolloutCommand(io, env),
    driftCommand(io, env),
    flCommand(io, env),
  ];
}
