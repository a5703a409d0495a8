/**
 * How the demo reports: numbered steps, and checked outcomes (what was
 * expected, what happened). The demo's exit code is 0 only when every outcome
 * is the expected one.
 */
export interface Outcome {
  check: string;
  expected: string;
  got: string;
}

export interface DemoReport {
  step(text: string): void;
  note(text: string): void;
  /** Records an outcome: `got` must start with `expected`. */
  outcome(check: string, expected: string, got: string): void;
  readonly outcomes: readonly Outcome[];
  failed(): Outcome[];
}

export function createDemoReport(write: (text: string) => void): DemoReport {
  const outcomes: Outcome[] = [];
  return {
    step: (text) => write(`\n> ${text}\n`),
    note: (text) => write(`  ${text}\n`),
    outcome(check, expected, got) {
      outcomes.push({ check, expected, got });
      write(`  ${got.startsWith(expected) ? 'ok  ' : 'FAIL'} ${check}: ${got}\n`);
    },
    outcomes,
    failed: () => outcomes.filter((o) => !o.got.startsWith(o.expected)),
  };
}
