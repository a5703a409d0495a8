/**
 * `fleet bundle build`'s drift options: which signals devices monitor, how
 * often they sample, and which data the baselines describe.
 *
 *   --drift-signals inputs:8,confidence,predicted-class,pca:5,pca-error   (the default)
 *   --drift-signals input:350,input:406,confidence
 *   --drift-sample-rate 0.05 --drift-data data/mnist-train.fleval
 *   --no-drift
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { DRIFT_MAX_INPUT_SIZE, DRIFT_MAX_PCA_COMPONENTS, DRIFT_MAX_SIGNALS } from '@fleet/protocol';
import {
  DEFAULT_DRIFT_SETTINGS,
  DEFAULT_DRIFT_SIGNALS,
  type DriftSignalRequest,
} from '../core/build/drift-profile.ts';

export interface DriftFlags {
  /** false with --no-drift. */
  drift: boolean;
  driftSignals: DriftSignalRequest[];
  driftSampleRate: number;
  driftData?: string;
}

const SIGNAL_HELP =
  'comma-separated: input:I (feature I), inputs:N (N features chosen by variance), confidence, predicted-class, pca:N (first N principal components), pca-error';

/** The text form of a signal list, as `--drift-signals` takes it. */
export function formatDriftSignals(signals: readonly DriftSignalRequest[]): string {
  return signals
    .map((s) => {
      switch (s.type) {
        case 'input':
          return `input:${s.index}`;
        case 'inputs-by-variance':
          return `inputs:${s.count}`;
        case 'pca':
          return `pca:${s.count}`;
        default:
          return s.type;
      }
    })
    .join(',');
}

export function parseDriftSignals(value: string): DriftSignalRequest[] {
  const tokens = value
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (tokens.length === 0) throw new InvalidArgumentError(SIGNAL_HELP);
  return tokens.map(parseToken);
}

function parseToken(token: string): DriftSignalRequest {
  if (token === 'confidence' || token === 'predicted-class' || token === 'pca-error') {
    return { type: token };
  }
  const match = /^(input|inputs|pca):(\d+)$/.exec(token);
  const n = Number(match?.[2]);
  if (match?.[1] === 'input' && n < DRIFT_MAX_INPUT_SIZE) return { type: 'input', index: n };
  if (match?.[1] === 'inputs' && n >= 1 && n <= DRIFT_MAX_SIGNALS) {
    return { type: 'inputs-by-variance', count: n };
  }
  if (match?.[1] === 'pca' && n >= 1 && n <= DRIFT_MAX_PCA_COMPONENTS)
    return { type: 'pca', count: n };
  throw new InvalidArgumentError(`${JSON.stringify(token)} is not a drift signal; ${SIGNAL_HELP}`);
}

function parseRate(value: string): number {
  const rate = Number(value);
  if (!(rate > 0 && rate <= 1)) throw new InvalidArgumentError('a share of inferences in (0, 1]');
  return rate;
}

export function addDriftOptions(command: Command): Command {
  return command
    .option('--no-drift', 'ship no drift profile (devices then monitor nothing)')
    .addOption(
      new Option('--drift-signals <list>', `monitored signals, ${SIGNAL_HELP}`)
        .argParser(parseDriftSignals)
        .default([...DEFAULT_DRIFT_SIGNALS], formatDriftSignals(DEFAULT_DRIFT_SIGNALS)),
    )
    .addOption(
      new Option('--drift-sample-rate <rate>', 'default share of inferences devices sample')
        .argParser(parseRate)
        .default(DEFAULT_DRIFT_SETTINGS.sampleRate),
    )
    .option(
      '--drift-data <file>',
      'data the baselines describe, .fleval (default: the evaluation data)',
    );
}
