/**
 * The HTTP load generator: a separate process (forked by http-load.ts) that
 * runs autocannon against the control plane, so generating load does not
 * share an event loop with the server it measures. It gets one job over IPC,
 * runs an unmeasured warm-up and then the measured run, and sends back a
 * summary. Progress goes to stderr.
 *
 * Scenarios:
 * - `list`: `GET /v1/devices?tag=site%3D<site>&hardware=<class>&limit=50`
 *   with a random site and class per sequence, then the next two pages by
 *   the cursor the previous page returned (page 1, 2, 3, again).
 * - `lookup`: `GET /v1/devices/{id}` with a random seeded id per request.
 */
import autocannon, { type Options, type Request, type Result } from 'autocannon';
import { HARDWARE, SITES, benchDeviceId, pick } from './bench-fleet.ts';

export type Scenario = 'list' | 'lookup';

export interface HttpLoadJob {
  url: string;
  token: string;
  scenario: Scenario;
  connections: number;
  durationS: number;
  warmupS: number;
  /** Devices seeded (ids 0..deviceCount-1), for random lookups. */
  deviceCount: number;
}

export interface HttpLoadSummary {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  requestsPerS: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** 200 listing pages with no devices (the filters should always match some). */
  emptyPages: number;
  durationS: number;
}

let emptyPages = 0;

interface ListContext {
  query?: string;
  cursor?: string;
}

/** Keeps the page's cursor for the next request of the sequence. */
function rememberCursor(status: number, body: string, context: object): void {
  const c = context as ListContext;
  c.cursor = /"nextCursor":"([^"]+)"/.exec(body)?.[1];
  if (status === 200 && body.startsWith('{"devices":[]')) emptyPages++;
}

function listRequests(): Request[] {
  const firstPage: Request = {
    setupRequest(request, context) {
      const c = context as ListContext;
      c.query = `tag=site%3D${pick(SITES, Math.random)}&hardware=${pick(HARDWARE, Math.random)}&limit=50`;
      return { ...request, path: `/v1/devices?${c.query}` };
    },
    onResponse: rememberCursor,
  };
  const nextPage: Request = {
    setupRequest(request, context) {
      const { query, cursor } = context as ListContext;
      const path = cursor ? `/v1/devices?${query}&cursor=${cursor}` : `/v1/devices?${query}`;
      return { ...request, path };
    },
    onResponse: rememberCursor,
  };
  return [firstPage, nextPage, nextPage];
}

function lookupRequests(deviceCount: number): Request[] {
  return [
    {
      setupRequest: (request) => ({
        ...request,
        path: `/v1/devices/${benchDeviceId(Math.floor(Math.random() * deviceCount))}`,
      }),
    },
  ];
}

function summarize(result: Result): HttpLoadSummary {
  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) {
    statusCodes[code] = stat.count ?? 0;
  }
  return {
    p50Ms: result.latency.p50,
    p90Ms: result.latency.p90,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    meanMs: +result.latency.mean.toFixed(2),
    requestsPerS: +result.requests.mean.toFixed(1),
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    emptyPages,
    durationS: result.duration,
  };
}

function run(job: HttpLoadJob, durationS: number): Promise<Result> {
  const options: Options = {
    url: job.url,
    connections: job.connections,
    duration: durationS,
    headers: { authorization: `Bearer ${job.token}` },
    requests: job.scenario === 'list' ? listRequests() : lookupRequests(job.deviceCount),
  };
  return autocannon(options);
}

async function runJob(job: HttpLoadJob): Promise<HttpLoadSummary> {
  const label = `  [load ${process.pid}] ${job.scenario}`;
  if (job.warmupS > 0) {
    process.stderr.write(`${label}: warm-up ${job.warmupS} s\n`);
    await run(job, job.warmupS);
  }
  emptyPages = 0;
  process.stderr.write(`${label}: measuring ${job.durationS} s, ${job.connections} connections\n`);
  return summarize(await run(job, job.durationS));
}

process.once('message', (job: HttpLoadJob) => {
  runJob(job).then(
    (summary) => process.send!({ ok: true, summary }, () => process.exit(0)),
    (error: unknown) => process.send!({ ok: false, error: String(error) }, () => process.exit(1)),
  );
});
