/**
 * Entry point of the `fleet` command: the only place that touches process
 * globals (argv, stdout, the clock, the exit code).
 */
import { runCli } from './program.ts';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  nowMs: () => Date.now(),
});
