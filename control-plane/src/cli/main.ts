/**
 * Entry point of the `fleet` command: the only place that touches process
 * globals for the CLI (argv, environment, stdout, the clock, the exit code).
 * The tree is the bundle factory's commands plus the control plane's.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '@fleet/bundles';
import { configFromEnvironment } from '../main-config.ts';
import { registryCommands } from './registry-commands.ts';
import { upCommand } from './up-command.ts';

const io = {
  stdout: (text: string) => process.stdout.write(text),
  stderr: (text: string) => process.stderr.write(text),
  nowMs: () => Date.now(),
};
const cliEnv = {
  url: process.env.FLEET_URL,
  token: process.env.FLEET_TOKEN,
  // Per user, wherever the command runs: $XDG_CONFIG_HOME/fleet/cli.json or ~/.config/fleet/cli.json.
  configPath:
    process.env.FLEET_CONFIG ??
    join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'fleet', 'cli.json'),
  color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
};

process.exitCode = await runCli(process.argv.slice(2), io, [
  upCommand(io, configFromEnvironment(process.env)),
  ...registryCommands(io, cliEnv),
]);
