/**
 * Runs one job in a forked bench process (TypeScript through tsx): sends the
 * job over IPC and resolves to the one reply, or rejects if the process
 * fails or exits without replying. The child's stdout and stderr both go to
 * this process's stderr, so stdout stays for the bench's JSON.
 */
import { fork } from 'node:child_process';

type Reply<T> = { ok: true; summary: T } | { ok: false; error: string };

export function runInChild<T>(modulePath: string, job: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(modulePath, [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    let settled = false;
    child.once('message', (message: Reply<T>) => {
      settled = true;
      if (message.ok) resolve(message.summary);
      else reject(new Error(`${modulePath}: ${message.error}`));
    });
    child.once('error', (error) => {
      settled = true;
      reject(error);
    });
    child.once('exit', (code, signal) => {
      if (!settled) reject(new Error(`${modulePath} exited (${signal ?? code}) without a result`));
    });
    child.send(job);
  });
}
