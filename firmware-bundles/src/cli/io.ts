/**
 * What a CLI command needs from the outside world, injected so tests can run
 * commands in-process with a fixed clock and captured output.
 */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Wall-clock time in epoch ms. */
  nowMs(): number;
}

/** Exit codes: 0 success, 1 refused (verification or input), 2 usage. */
export const EXIT_REFUSED = 1;

export function printJson(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}
