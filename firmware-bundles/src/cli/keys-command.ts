/**
 * `fleet keys init` and `fleet keys rotate`: trust-root ceremonies on a key directory.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { ROLE_NAMES, type RoleName } from '@fleet/protocol';
import { createKeyDirectory } from '../adapters/fs/key-directory.ts';
import { initTrust, rotateTrust, type KeyRecord, type RoleShape } from '../core/key-ceremony.ts';
import { DAY_MS, printJson, type CliIo } from './io.ts';

/** 2-of-3 for both roles: no single key can sign a root or a bundle on its own. */
const DEFAULT_SHAPE: RoleShape = { keys: 3, threshold: 2 };
/** Roots are long-lived and rotated deliberately: one year by default. */
const DEFAULT_ROOT_LIFETIME_DAYS = 365;

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
}

export function parseIsoTime(value: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms) || !/^\d{4}-\d\d-\d\dT/.test(value)) {
    throw new InvalidArgumentError('an ISO 8601 time such as 2027-06-01T00:00:00Z');
  }
  return new Date(ms).toISOString();
}

function parseRoles(value: string): RoleName[] {
  const roles = value.split(',').map((r) => r.trim());
  for (const r of roles) {
    if (!(ROLE_NAMES as readonly string[]).includes(r)) {
      throw new InvalidArgumentError(`roles are ${ROLE_NAMES.join(', ')}`);
    }
  }
  return roles as RoleName[];
}

interface ShapeFlags {
  keys?: number;
  threshold?: number;
  bundleKeys?: number;
  bundleThreshold?: number;
}

function shapeOptions(command: Command): Command {
  return command
    .addOption(new Option('--keys <n>', 'root-role keys').argParser(parsePositiveInt))
    .addOption(
      new Option('--threshold <n>', 'root-role signatures needed').argParser(parsePositiveInt),
    )
    .addOption(
      new Option('--bundle-keys <n>', 'bundle-signing keys (default: --keys)').argParser(
        parsePositiveInt,
      ),
    )
    .addOption(
      new Option(
        '--bundle-threshold <n>',
        'bundle signatures needed (default: --threshold)',
      ).argParser(parsePositiveInt),
    )
    .addOption(new Option('--expires <iso>', 'root expiry').argParser(parseIsoTime));
}

/** `--keys/--threshold` shape both roles unless `--bundle-*` says otherwise; unset flags keep `current`. */
function shapes(
  flags: ShapeFlags,
  current: Record<RoleName, RoleShape>,
): Record<RoleName, RoleShape> {
  return {
    root: {
      keys: flags.keys ?? current.root.keys,
      threshold: flags.threshold ?? current.root.threshold,
    },
    bundle: {
      keys: flags.bundleKeys ?? flags.keys ?? current.bundle.keys,
      threshold: flags.bundleThreshold ?? flags.threshold ?? current.bundle.threshold,
    },
  };
}

function keyList(keys: readonly KeyRecord[]) {
  return keys.map((k) => ({ role: k.role, keyId: k.keyId }));
}

function defaultExpiry(io: CliIo): string {
  return new Date(io.nowMs() + DEFAULT_ROOT_LIFETIME_DAYS * DAY_MS).toISOString();
}

export function keysCommand(io: CliIo): Command {
  const keys = new Command('keys').description('trust root and signing keys');

  shapeOptions(
    keys
      .command('init')
      .description('create a trust root with root and bundle-signing keys (default 2 of 3 each)')
      .requiredOption('--dir <dir>', 'key directory to create'),
  ).action(async (flags: ShapeFlags & { dir: string; expires?: string }) => {
    const directory = createKeyDirectory(flags.dir);
    const result = await initTrust({
      ...shapes(flags, { root: DEFAULT_SHAPE, bundle: DEFAULT_SHAPE }),
      expires: flags.expires ?? defaultExpiry(io),
    });
    await directory.writeInitial(result);
    printJson(io, {
      ok: true,
      root: directory.rootPath,
      version: result.version,
      keys: keyList(result.newKeys),
    });
  });

  shapeOptions(
    keys
      .command('rotate')
      .description('sign the next root version with a threshold of the old and all new root keys')
      .requiredOption('--dir <dir>', 'key directory holding the current root')
      .addOption(
        new Option('--roles <roles>', 'roles whose keys are replaced')
          .default(['root', 'bundle'], 'root,bundle')
          .argParser(parseRoles),
      ),
  ).action(async (flags: ShapeFlags & { dir: string; roles: RoleName[]; expires?: string }) => {
    const directory = createKeyDirectory(flags.dir);
    const { root, keys: heldKeys } = await directory.load();
    const { roles } = root.metadata;
    const shapeOf = (role: RoleName) => ({
      keys: roles[role].keyIds.length,
      threshold: roles[role].threshold,
    });
    const result = await rotateTrust({
      current: root,
      heldKeys,
      replace: flags.roles,
      shapes: shapes(flags, { root: shapeOf('root'), bundle: shapeOf('bundle') }),
      expires: flags.expires ?? defaultExpiry(io),
    });
    await directory.writeRotation(result);
    printJson(io, {
      ok: true,
      root: directory.rootPath,
      version: result.version,
      newKeys: keyList(result.newKeys),
      retiredKeys: keyList(result.retiredKeys),
    });
  });

  return keys;
}
