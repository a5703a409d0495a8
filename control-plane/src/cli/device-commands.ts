/**
 * `fleet devices ls|tag|revoke` and `fleet enroll-token create`, through the
 * control plane API.
 */
import { Command, Option } from 'commander';
import type { CliIo } from '@fleet/bundles';
import { createApiClient, type CliEnv } from './api-client.ts';
import { collect, print, tagMap, withUrl } from './command-helpers.ts';

interface DeviceListItem {
  id: string;
  status: string;
  hardware: string;
  tags: Record<string, string>;
  model: { name: string; version: string } | null;
  lastSeenAt: string | null;
}

export function devicesCommand(io: CliIo, env: CliEnv): Command {
  const devices = new Command('devices').description('List, tag and revoke devices');
  withUrl(devices.command('ls'))
    .description('List devices (filters combine)')
    .option('--tag <k=v>', 'tag filter, repeatable', collect)
    .option('--hardware <class>', 'hardware class')
    .addOption(
      new Option('--status <s>', 'connection status').choices(['online', 'offline', 'revoked']),
    )
    .option('--limit <n>', 'page size', '50')
    .option('--cursor <c>', 'next page cursor from a previous listing')
    .option('--json', 'print JSON')
    .action(
      async (flags: {
        url?: string;
        tag?: string[];
        hardware?: string;
        status?: string;
        limit: string;
        cursor?: string;
        json?: boolean;
      }) => {
        const api = await createApiClient(flags, env);
        const query = new URLSearchParams({ limit: flags.limit });
        for (const tag of flags.tag ?? []) query.append('tag', tag);
        if (flags.hardware) query.set('hardware', flags.hardware);
        if (flags.status) query.set('status', flags.status);
        if (flags.cursor) query.set('cursor', flags.cursor);
        const page = await api.request<{ devices: DeviceListItem[]; nextCursor: string | null }>(
          'GET',
          `/v1/devices?${query.toString()}`,
        );
        if (flags.json) return print(io, page);
        for (const d of page.devices) {
          const tags = Object.entries(d.tags)
            .map(([k, v]) => `${k}=${v}`)
            .join(',');
          const model = d.model ? `${d.model.name}@${d.model.version}` : '-';
          io.stdout(
            `${d.id.padEnd(24)} ${d.status.padEnd(8)} ${d.hardware.padEnd(12)} ${model.padEnd(20)} ${tags}\n`,
          );
        }
        io.stdout(
          page.nextCursor
            ? `more: --cursor ${page.nextCursor}\n`
            : `${page.devices.length} device(s)\n`,
        );
      },
    );
  withUrl(devices.command('tag <id>'))
    .description('Set (k=v) and remove (--remove k) tags')
    .option('--set <k=v>', 'tag to set, repeatable', collect)
    .option('--remove <key>', 'tag to remove, repeatable', collect)
    .action(async (id: string, flags: { url?: string; set?: string[]; remove?: string[] }) => {
      const api = await createApiClient(flags, env);
      print(
        io,
        await api.request('PATCH', `/v1/devices/${encodeURIComponent(id)}/tags`, {
          json: { set: tagMap(flags.set ?? []), remove: flags.remove ?? [] },
        }),
      );
    });
  withUrl(devices.command('revoke <id>'))
    .description('Revoke a device: disconnected now, refused from now on')
    .requiredOption('--reason <text>', 'why (kept in the audit log)')
    .action(async (id: string, flags: { url?: string; reason: string }) => {
      const api = await createApiClient(flags, env);
      print(
        io,
        await api.request('POST', `/v1/devices/${encodeURIComponent(id)}/revoke`, {
          json: { reason: flags.reason },
        }),
      );
    });
  return devices;
}

export function enrolTokenCommand(io: CliIo, env: CliEnv): Command {
  const command = new Command('enroll-token').description('Enrolment tokens for new devices');
  withUrl(command.command('create'))
    .description('Create a single-use enrolment token (printed once)')
    .option('--ttl <seconds>', 'lifetime in seconds (default 3600)')
    .option('--tag <k=v>', 'tag every device enrolled with it gets, repeatable', collect)
    .option('--hardware <class>', 'only devices of this hardware class')
    .action(async (flags: { url?: string; ttl?: string; tag?: string[]; hardware?: string }) => {
      const api = await createApiClient(flags, env);
      print(
        io,
        await api.request('POST', '/v1/enrolment-tokens', {
          json: {
            ...(flags.ttl ? { ttlSeconds: Number(flags.ttl) } : {}),
            ...(flags.tag ? { tags: tagMap(flags.tag) } : {}),
            ...(flags.hardware ? { hardware: flags.hardware } : {}),
          },
        }),
      );
    });
  return command;
}
