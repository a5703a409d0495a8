/**
 * Measures one HTTP endpoint of a listening control plane with autocannon
 * running in a forked process (http-load-child.ts), and checks the endpoint
 * answers correctly once before loading it.
 */
import { fileURLToPath } from 'node:url';
import { benchDeviceId, HARDWARE, SITES } from './bench-fleet.ts';
import { runInChild } from './child-process.ts';
import type { HttpLoadJob, HttpLoadSummary } from './http-load-child.ts';

const CHILD = fileURLToPath(new URL('./http-load-child.ts', import.meta.url));

export function measureEndpoint(job: HttpLoadJob): Promise<HttpLoadSummary> {
  return runInChild<HttpLoadSummary>(CHILD, job);
}

/**
 * One listing page and one lookup, checked: 200s, and a page that is not
 * empty. Throws naming what was wrong (a bench against a broken API would
 * only measure error pages).
 */
export async function checkEndpoints(url: string, token: string): Promise<void> {
  const headers = { authorization: `Bearer ${token}` };
  const list = await fetch(
    `${url}/v1/devices?tag=site%3D${SITES[0]}&hardware=${HARDWARE[0]}&limit=50`,
    { headers },
  );
  const page = (await list.json()) as { devices?: unknown[]; nextCursor?: string | null };
  if (list.status !== 200 || !page.devices?.length) {
    throw new Error(`listing check: status ${list.status}, ${page.devices?.length} devices`);
  }
  const lookup = await fetch(`${url}/v1/devices/${benchDeviceId(0)}`, { headers });
  await lookup.arrayBuffer();
  if (lookup.status !== 200) throw new Error(`lookup check: status ${lookup.status}`);
}
