/**
 * The `fleet` command tree. Packages add their command groups here as they
 * arrive (control plane: `up`, `tokens`, ...; simulator: `sim`).
 */
import { Command } from 'commander';
import { isFleetError } from '@fleet/protocol';
import { bundleCommand } from './bundle-command.ts';
import { keysCommand } from './keys-command.ts';
import { modelCommand } from './model-command.ts';
import { EXIT_REFUSED, printJson, type CliIo } from './io.ts';

/** The tree; `extra` adds other packages' command groups (the control plane's `up`, `devices`, ...). */
export function createProgram(io: CliIo, extra: readonly Command[] = []): Command {
  const program = new Command('fleet').description(
    'Fleet: an edge fleet manager for ML models (signed bundles, control plane, devices)',
  );
  program.addCommand(keysCommand(io));
  program.addCommand(bundleCommand(io));
  program.addCommand(modelCommand(io));
  for (const command of extra) program.addCommand(command);
  routeThroughIo(program, io);
  return program;
}

/** addCommand does not pass settings down, so every command in the tree gets them. */
function routeThroughIo(command: Command, io: CliIo): void {
  command
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) });
  for (const sub of command.commands) routeThroughIo(sub, io);
}

/** Runs the CLI and returns the process exit code; refusals print `{ok:false, code}`. */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
  extra: readonly Command[] = [],
): Promise<number> {
  const program = createProgram(io, extra);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (isFleetError(error)) {
      printJson(io, { ok: false, code: error.code, message: error.message });
      io.stderr(`fleet: ${error.message}\n`);
      return EXIT_REFUSED;
    }
    if (isCommanderExit(error)) return error.exitCode === 0 ? 0 : 2;
    io.stderr(`fleet: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_REFUSED;
  }
}

function isCommanderExit(error: unknown): error is { exitCode: number; code: string } {
  return (
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    typeof error.code === 'string' &&
    (error as { code: string }).code.startsWith('commander.')
  );
}
