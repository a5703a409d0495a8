/**
 * Runs the control plane as a service (`fleet up`, `npm start`): the embedded
 * broker or the external one, the HTTP listener, the first admin token
 * printed once, and a graceful stop on SIGINT/SIGTERM that drains in-flight
 * requests before closing the broker and the database.
 */
import { mkdir } from 'node:fs/promises';
import { pino } from 'pino';
import type { Config } from './config.ts';
import { createControlPlane, type ControlPlane } from './control-plane.ts';
import { connectExternalBroker } from './adapters/mqtt/external-broker.ts';
import { startEmbeddedLink } from './adapters/mqtt/embedded-link.ts';

export interface RunOptions {
  config: Config;
  /** Where the one-time admin token and start-up notes go (the terminal). */
  announce: (text: string) => void;
  nowMs?: () => number;
}

export async function runControlPlane(options: RunOptions): Promise<ControlPlane> {
  const { config } = options;
  const nowMs = options.nowMs ?? (() => Date.now());
  const logger = pino({ level: config.logLevel });
  if (!config.databaseUrl) await mkdir(config.dataDir, { recursive: true });
  const cp = await createControlPlane({
    config,
    nowMs,
    logger,
    listen: true,
    connectBroker: (devices) =>
      config.mqttUrl
        ? connectExternalBroker({
            url: config.mqttUrl,
            clientId: `fleet-control-plane-${process.pid}`,
            shareGroup: config.mqttShareGroup,
            onError: (error) => logger.warn({ err: error }, 'device message handler failed'),
          })
        : startEmbeddedLink({ devices, nowMs, host: config.mqttHost, port: config.mqttPort }),
  });
  if (cp.firstAdminToken) {
    options.announce(
      [
        '',
        'First start: an admin API token was created. It is shown this once; store it now.',
        `  ${cp.firstAdminToken}`,
        `Use it with: FLEET_TOKEN=... npx fleet devices ls --url ${cp.url}`,
        '',
      ].join('\n'),
    );
  }
  options.announce(`control plane on ${cp.url}, devices connect to ${cp.broker?.deviceUrl}\n`);
  return cp;
}

/** Closes `cp` on the first SIGINT/SIGTERM; a second signal exits at once. */
export function stopOnSignals(cp: ControlPlane, onStopped: () => void): void {
  let stopping = false;
  const stop = () => {
    if (stopping) process.exit(1);
    stopping = true;
    cp.close().then(onStopped, (error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
