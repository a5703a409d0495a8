/**
 * `fleet fl start|status|ls|cancel|approve`, through the control plane API.
 * `status --watch` redraws the round until it ends or waits for an approver.
 */
import { Command } from 'commander';
import type { CliIo } from '@fleet/bundles';
import { FleetError } from '@fleet/protocol';
import { createApiClient, type CliEnv } from './api-client.ts';
import { print, showOrWatch, withUrl } from './command-helpers.ts';

export interface FlRoundView {
  id: string;
  model: { name: string; version: string; release: number };
  status: string;
  reason: string | null;
  trigger: { kind: string; detail: string | null };
  createdAt: string;
  deadline: string | null;
  evalSet: string;
  config: { strategy?: { kind: string; beta?: number } } & Record<string, unknown>;
  counts: Record<string, number>;
  rejections: Record<string, number>;
  answers?: Array<{
    deviceId: string;
    outcome: string;
    sampleCount: number;
    reason: string | null;
    norm: number | null;
  }>;
  stragglers: string[];
  evaluation: { candidateAccuracy: number; championAccuracy: number } | null;
  decision: string | null;
  candidate: { candidateId: string; version: string | null; release: number | null } | null;
  rolloutId: string | null;
  error: string | null;
}

const WAITING = new Set(['promoted', 'rejected', 'failed', 'cancelled', 'awaiting-approval']);
const pct = (x: number) => `${(x * 100).toFixed(2)} %`;

/** The status screen of one round. */
export function formatFlRound(r: FlRoundView, maxDevices = 20): string {
  const c = r.counts;
  const strategy = r.config.strategy;
  const lines = [
    `round ${r.id}  ${r.model.name}@${r.model.version} (release ${r.model.release})  ${r.status.toUpperCase()}`,
    `  ${strategy ? `${strategy.kind}${strategy.beta !== undefined ? ` beta ${strategy.beta}` : ''}` : ''}  eval set ${r.evalSet}  trigger ${r.trigger.kind}${r.deadline ? `  deadline ${r.deadline}` : ''}`,
    `  selected ${c['selected'] ?? 0} of ${c['eligible'] ?? 0} eligible  accepted ${c['accepted'] ?? 0}  failed ${c['failed'] ?? 0}  rejected ${c['rejected'] ?? 0}  stragglers ${c['stragglers'] ?? 0}`,
  ];
  const rejections = Object.entries(r.rejections).filter(([, n]) => n > 0);
  if (rejections.length > 0)
    lines.push(`  rejections: ${rejections.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  if (r.evaluation) {
    lines.push(
      `  evaluation: candidate ${pct(r.evaluation.candidateAccuracy)} vs champion ${pct(r.evaluation.championAccuracy)}  decision ${r.decision ?? '-'}`,
    );
  }
  if (r.candidate?.version)
    lines.push(
      `  candidate ${r.model.name}@${r.candidate.version} (release ${r.candidate.release})`,
    );
  if (r.rolloutId) lines.push(`  rollout ${r.rolloutId}`);
  if (r.reason) lines.push(`  ${r.reason}`);
  if (r.error) lines.push(`  error: ${r.error}`);
  for (const a of (r.answers ?? []).slice(0, maxDevices)) {
    const norm = a.norm === null ? '' : `  norm ${a.norm.toFixed(4)}`;
    lines.push(
      `    ${a.deviceId.padEnd(24)} ${a.outcome.padEnd(9)} samples ${a.sampleCount}${norm}${a.reason ? `  ${a.reason}` : ''}`,
    );
  }
  if ((r.answers?.length ?? 0) > maxDevices)
    lines.push(`    ... ${r.answers!.length - maxDevices} more`);
  if (r.stragglers.length > 0)
    lines.push(`  stragglers: ${r.stragglers.slice(0, maxDevices).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

function number(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) {
    throw new FleetError('INVALID_REQUEST', `--${flag}: '${text}' is not a number`);
  }
  return value;
}

type StartFlags = Record<string, string | boolean | undefined> & { url?: string };

/** The `POST /v1/fl/rounds` body from the start flags. */
export function startBody(flags: StartFlags): Record<string, unknown> {
  const text = (k: string) => (typeof flags[k] === 'string' ? flags[k] : undefined);
  const config: Record<string, unknown> = {};
  const numeric: Record<string, string> = {
    fraction: 'fraction',
    minClients: 'minClients',
    minSamples: 'minSamples',
    maxSamples: 'maxSamples',
    epochs: 'epochs',
    batchSize: 'batchSize',
    lr: 'learningRate',
    mu: 'proxMu',
    clip: 'clipNorm',
    margin: 'evaluationMargin',
  };
  for (const [flag, field] of Object.entries(numeric)) {
    const value = number(
      flag.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`),
      text(flag),
    );
    if (value !== undefined) config[field] = value;
  }
  if (text('encoding')) config['encoding'] = text('encoding');
  const kind = text('strategy');
  const beta = number('beta', text('beta'));
  if (kind) config['strategy'] = kind === 'trimmed-mean' ? { kind, beta: beta ?? 0.1 } : { kind };
  const rollout: Record<string, string> = {};
  if (text('rolloutWaves')) rollout['waves'] = text('rolloutWaves')!;
  if (text('rolloutBake')) rollout['bake'] = text('rolloutBake')!;
  return {
    model: text('model'),
    target: text('target'),
    evalSet: text('evalSet'),
    config,
    ...(text('deadline') ? { deadline: text('deadline') } : {}),
    ...(Object.keys(rollout).length > 0 ? { rollout } : {}),
  };
}

export function flCommand(
  io: CliIo,
  env: CliEnv,
  sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)),
): Command {
  const fl = new Command('fl').description('Federated learning rounds');
  withUrl(fl.command('start'))
    .description('Start a federated round on the devices running a model')
    .requiredOption('--model <name[@version]>', 'the base model (default: its latest version)')
    .requiredOption(
      '--target <selector>',
      '`all`, or tag:k=v, hardware:H, id:D terms joined by commas',
    )
    .requiredOption('--eval-set <name>', 'held-out eval set the candidate is judged on')
    .option('--fraction <f>', 'share of eligible devices selected, in (0, 1]')
    .option('--min-clients <n>', 'fewest devices selected and updates aggregated')
    .option('--min-samples <n>', 'labelled samples a device needs')
    .option('--max-samples <n>', 'most samples a device trains on')
    .option('--epochs <e>', 'local epochs')
    .option('--batch-size <b>', 'local batch size')
    .option('--lr <r>', 'local learning rate')
    .option('--mu <m>', 'FedProx proximal term (0: FedAvg)')
    .option('--clip <c>', 'L2 bound of each update')
    .option('--encoding <e>', 'int8 or float32 updates')
    .option('--strategy <s>', 'fedavg, trimmed-mean or median')
    .option('--beta <b>', 'trimmed-mean: share trimmed from each end')
    .option('--margin <m>', 'accuracy gain needed to promote, e.g. 0.005')
    .option('--deadline <duration>', 'collection deadline, e.g. 10m')
    .option('--rollout-waves <list>', 'waves of the promoted candidate, e.g. 10%,50%,all')
    .option('--rollout-bake <duration>', 'bake time of each wave')
    .option('--json', 'print JSON')
    .action(async (flags: StartFlags) => {
      const body = startBody(flags);
      const api = await createApiClient(flags, env);
      const created = await api.request<FlRoundView>('POST', '/v1/fl/rounds', { json: body });
      if (flags.json) return print(io, created);
      io.stdout(formatFlRound(created));
    });
  withUrl(fl.command('status <id>'))
    .description('Show a round: counts, answers, rejections, evaluation and decision')
    .option('--watch', 'redraw until it ends or awaits approval')
    .option('--interval <ms>', 'redraw interval with --watch', '2000')
    .option('--json', 'print JSON')
    .action(
      async (
        id: string,
        flags: { url?: string; watch?: boolean; interval: string; json?: boolean },
      ) => {
        const api = await createApiClient(flags, env);
        await showOrWatch(io, {
          fetch: () => api.request<FlRoundView>('GET', `/v1/fl/rounds/${encodeURIComponent(id)}`),
          format: formatFlRound,
          json: flags.json,
          watch: flags.watch,
          intervalMs: Number(flags.interval),
          done: (view) => WAITING.has(view.status),
          sleep,
        });
      },
    );
  withUrl(fl.command('ls'))
    .description('List rounds, newest first')
    .option('--status <status>', 'only rounds in this status')
    .option('--json', 'print JSON')
    .action(async (flags: { url?: string; status?: string; json?: boolean }) => {
      const api = await createApiClient(flags, env);
      const query = flags.status ? `?status=${encodeURIComponent(flags.status)}` : '';
      const page = await api.request<{ rounds: FlRoundView[] }>('GET', `/v1/fl/rounds${query}`);
      if (flags.json) return print(io, page);
      const rows = page.rounds.map(
        (r) =>
          `${r.id.padEnd(40)} ${`${r.model.name}@${r.model.version}`.padEnd(24)} ${r.status.padEnd(18)} ${String(r.counts['accepted'] ?? 0).padStart(4)}/${String(r.counts['selected'] ?? 0).padEnd(4)} ${r.createdAt}`,
      );
      io.stdout(
        `${['ROUND'.padEnd(40), 'MODEL'.padEnd(24), 'STATUS'.padEnd(18), 'ACCEPTED ', 'CREATED'].join(' ')}\n${rows.map((l) => `${l}\n`).join('')}`,
      );
    });
  withUrl(fl.command('cancel <id>'))
    .description('Cancel a round')
    .option('--reason <text>', 'why, for the audit log', 'cancelled from the CLI')
    .action(async (id: string, flags: { url?: string; reason: string }) => {
      const api = await createApiClient(flags, env);
      const view = await api.request<FlRoundView>(
        'POST',
        `/v1/fl/rounds/${encodeURIComponent(id)}/cancel`,
        {
          json: { reason: flags.reason },
        },
      );
      io.stdout(formatFlRound(view));
    });
  withUrl(fl.command('approve <id>'))
    .description('Approve a round awaiting approval: its candidate is promoted and rolled out')
    .action(async (id: string, flags: { url?: string }) => {
      const api = await createApiClient(flags, env);
      const view = await api.request<FlRoundView>(
        'POST',
        `/v1/fl/rounds/${encodeURIComponent(id)}/approve`,
      );
      io.stdout(formatFlRound(view));
    });
  return fl;
}
