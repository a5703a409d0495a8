/**
 * A private Mosquitto for tests: the documented mosquitto.conf and ACL
 * (control-plane/docs/external-broker/) with only paths, the listener and TLS
 * swapped for a temp dir and a free loopback port. Never the system broker's
 * 1883. Every wait is bounded; `stop()` kills the process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as netConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MOSQUITTO = '/usr/sbin/mosquitto';
export const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';
const DOCS = new URL('../../../../docs/external-broker/', import.meta.url);
const START_TIMEOUT_MS = 5000;

export interface MosquittoProcess {
  port: number;
  stop(): Promise<void>;
}

/** Why a private Mosquitto cannot run here, or null when it can. */
export function mosquittoMissing(): string | null {
  if (!existsSync(MOSQUITTO)) return 'mosquitto not installed';
  if (!existsSync(MOSQUITTO_PASSWD)) return 'mosquitto_passwd not installed';
  return null;
}

/**
 * Starts Mosquitto with `users` (name -> password) and the documented ACL,
 * followed by `extraAcl` lines (test observers only; device rules unchanged).
 */
export async function startMosquitto(options: {
  users: Record<string, string>;
  extraAcl?: string[];
  extraConf?: string[];
}): Promise<MosquittoProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-mosquitto-'));
  await chmod(dir, 0o755); // mosquitto started as root reads as user "mosquitto"
  const passwd = join(dir, 'passwd');
  await writeFile(passwd, '', { mode: 0o644 });
  for (const [user, password] of Object.entries(options.users)) {
    const made = spawnSync(MOSQUITTO_PASSWD, ['-b', passwd, user, password], { timeout: 5000 });
    if (made.status !== 0) throw new Error(`mosquitto_passwd: ${String(made.stderr)}`);
  }
  await chmod(passwd, 0o644);
  const acl = join(dir, 'fleet.acl');
  const documentedAcl = await readFile(new URL('mosquitto.acl', DOCS), 'utf8');
  await writeFile(acl, [documentedAcl, ...(options.extraAcl ?? [])].join('\n') + '\n', {
    mode: 0o644,
  });
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  const documentedConf = await readFile(new URL('mosquitto.conf', DOCS), 'utf8');
  const lines = testConf(documentedConf, { port, passwd, acl });
  await writeFile(conf, [...lines, ...(options.extraConf ?? [])].join('\n') + '\n', {
    mode: 0o644,
  });
  const child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const stop = async () => {
    await kill(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilListening(child, port, () => stderr);
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, stop };
}

/** The documented conf, with paths, listener, TLS, persistence and logs made local. */
function testConf(documented: string, at: { port: number; passwd: string; acl: string }): string[] {
  const replace: Record<string, string | null> = {
    password_file: `password_file ${at.passwd}`,
    acl_file: `acl_file ${at.acl}`,
    listener: `listener ${at.port} 127.0.0.1`,
    certfile: null,
    keyfile: null,
    persistence: 'persistence false',
    persistence_location: null,
    log_dest: 'log_dest stderr',
    log_type: null,
  };
  const lines: string[] = [];
  for (const line of documented.split('\n')) {
    const key = line.split(' ')[0] ?? '';
    if (line.startsWith('#') || !(key in replace)) lines.push(line);
    else if (replace[key] !== null) lines.push(replace[key] as string);
    if (key in replace) replace[key] = null; // once, even for repeated keys
  }
  return [...lines, 'log_type error', 'log_type warning'];
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (port === 1883) throw new Error('refusing the system broker port 1883');
  return port;
}

async function waitUntilListening(child: ChildProcess, port: number, stderr: () => string) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited: ${stderr()}`);
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`mosquitto did not listen on ${port} in ${START_TIMEOUT_MS} ms: ${stderr()}`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
}
