/**
 * `fleet drift status` and `fleet drift alerts`, through the control plane
 * API (GET /v1/drift, /v1/drift/alerts). Status is a table of the cohorts
 * against their latest scored window, drifted cohorts and signals
 * highlighted, with each cohort's recent history; `--watch` redraws it.
 */
import { Command } from 'commander';
import type { CliIo } from '@fleet/bundles';
import { createApiClient, type CliEnv } from './api-client.ts';
import { print, showOrWatch, withUrl } from './command-helpers.ts';

interface SignalView {
  name: string;
  drifted: boolean;
  insufficient: boolean;
  tripped: string[];
  distances: Record<string, number>;
}

interface ScoreView {
  verdict: 'drifted' | 'clean' | 'insufficient';
  sampled: number;
  driftedShare: number;
  signals: SignalView[];
}

export interface DriftStatusView {
  model: { name: string; version: string; release: number };
  windowMs: number;
  cohorts: Array<{
    cohort: string;
    windows: Array<ScoreView & { start: string; end: string; devices: number }>;
    cumulative: ScoreView | null;
    alert: { openedAt: string; signals: Array<{ name: string }> } | null;
  }>;
}

/** Windows shown in a cohort's history column, newest last. */
const HISTORY = 12;
const MARK = { drifted: '#', clean: '.', insufficient: '?' } as const;

function paint(text: string, color: boolean): string {
  return color ? `\x1b[1;31m${text}\x1b[0m` : text;
}

/**
 * The signals that drifted, worst first (by Hellinger distance, which every
 * kind has), each with KS for numbers or PSI for categories.
 */
function driftedSignals(score: ScoreView, max = 4): string {
  const rows = score.signals
    .filter((s) => s.drifted)
    .map((s) => {
      const metric = s.distances.ks !== undefined ? 'ks' : 'psi';
      return {
        name: s.name,
        metric,
        value: s.distances[metric] ?? 0,
        rank: s.distances.hellinger ?? 0,
      };
    })
    .sort((a, b) => b.rank - a.rank);
  if (rows.length === 0) return '-';
  const shown = rows.slice(0, max).map((r) => `*${r.name} ${r.metric} ${r.value.toFixed(2)}`);
  return shown.join('  ') + (rows.length > max ? `  +${rows.length - max} more` : '');
}

const hhmmss = (iso: string) => iso.slice(11, 19);

/** The status table: one row per cohort for its latest window, then the open alerts. */
export function formatDriftStatus(
  view: DriftStatusView,
  options: { color?: boolean } = {},
): string {
  const color = options.color ?? false;
  const { model } = view;
  const lines = [
    `drift  ${model.name}@${model.version} (release ${model.release})  windows of ${view.windowMs / 1000} s  (# drifted, . clean, ? too few samples)`,
  ];
  if (view.cohorts.length === 0) {
    lines.push('  no drift flushes scored yet');
    return `${lines.join('\n')}\n`;
  }
  const header = ['COHORT', 'WINDOW END', 'VERDICT', 'SAMPLES', 'DEVICES', 'SHARE', 'HISTORY'];
  const rows = view.cohorts.map((c) => {
    const latest = c.windows.at(-1);
    const history = c.windows
      .slice(-HISTORY)
      .map((w) => MARK[w.verdict])
      .join('');
    return {
      drifted: latest?.verdict === 'drifted',
      cells: [
        c.cohort,
        latest ? hhmmss(latest.end) : '-',
        latest ? latest.verdict.toUpperCase() : 'NO WINDOW',
        latest ? String(latest.sampled) : '-',
        latest ? String(latest.devices) : '-',
        latest ? latest.driftedShare.toFixed(2) : '-',
        history.padStart(HISTORY),
      ],
      signals: latest ? driftedSignals(latest) : '-',
    };
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r.cells[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ');
  lines.push(`${line(header)}  DRIFTED SIGNALS`);
  for (const row of rows) {
    const text = `${line(row.cells)}  ${row.signals}`;
    lines.push(row.drifted ? paint(text, color) : text);
  }
  const alerts = view.cohorts.filter((c) => c.alert);
  for (const c of alerts) {
    const names = c.alert!.signals.map((s) => s.name).join(', ');
    lines.push(paint(`ALERT  ${c.cohort} drifted since ${c.alert!.openedAt}: ${names}`, color));
  }
  if (alerts.length === 0) lines.push('no open drift alert');
  return `${lines.join('\n')}\n`;
}

export function driftCommand(
  io: CliIo,
  env: CliEnv,
  sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)),
): Command {
  const drift = new Command('drift').description('Drift of model versions per cohort');
  withUrl(drift.command('status'))
    .description('Cohorts against their latest scored window, drifted signals highlighted')
    .requiredOption(
      '--model <name[@version]>',
      'the model (default: its newest version with scores)',
    )
    .option('--cohort <key=value>', 'one cohort only (* for the whole fleet)')
    .option('--since <iso>', 'windows ending after this time (default: one hour ago)')
    .option('--watch', 'redraw until interrupted')
    .option('--interval <ms>', 'redraw interval with --watch', '5000')
    .option('--json', 'print JSON')
    .action(
      async (flags: {
        url?: string;
        model: string;
        cohort?: string;
        since?: string;
        watch?: boolean;
        interval: string;
        json?: boolean;
      }) => {
        const api = await createApiClient(flags, env);
        const query = new URLSearchParams({ model: flags.model });
        if (flags.cohort) query.set('cohort', flags.cohort);
        if (flags.since) query.set('since', flags.since);
        await showOrWatch(io, {
          fetch: () => api.request<DriftStatusView>('GET', `/v1/drift?${query.toString()}`),
          format: (view) => formatDriftStatus(view, { color: env.color ?? false }),
          json: flags.json,
          watch: flags.watch,
          intervalMs: Number(flags.interval),
          sleep,
        });
      },
    );
  withUrl(drift.command('alerts'))
    .description('Drift alerts, newest first')
    .option('--model <name[@version]>', 'one model or version')
    .option('--open', 'open alerts only')
    .action(async (flags: { url?: string; model?: string; open?: boolean }) => {
      const api = await createApiClient(flags, env);
      const query = new URLSearchParams();
      if (flags.model) query.set('model', flags.model);
      if (flags.open) query.set('open', 'true');
      print(io, await api.request('GET', `/v1/drift/alerts?${query.toString()}`));
    });
  return drift;
}
