/**
 * `fleet up`: starts the control plane in the foreground. Flags override the
 * environment (`DATABASE_URL`, `MQTT_URL`), which overrides the defaults.
 */
import { Command, InvalidArgumentError } from 'commander';
import type { CliIo } from '@fleet/bundles';
import { mergeConfig, type Config } from '../config.ts';
import { runControlPlane, stopOnSignals } from '../run-control-plane.ts';

function connections(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number, at least 1');
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port 0-65535');
  return n;
}

export function upCommand(io: CliIo, env: Partial<Config>): Command {
  return new Command('up')
    .description('Run the control plane (HTTP API, MQTT broker, database) in the foreground')
    .option('--port <n>', 'HTTP port (default 8080)', port)
    .option('--host <addr>', 'HTTP listen address (default 127.0.0.1)')
    .option('--data-dir <dir>', 'data directory (default .fleet)')
    .option('--mqtt-port <n>', 'embedded broker port (default 1884)', port)
    .option('--mqtt-host <addr>', 'embedded broker listen address (default 127.0.0.1)')
    .option(
      '--database-pool-size <n>',
      'PostgreSQL connections per pool, queries and transactions (default 5)',
      connections,
    )
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent')
    .action(
      async (flags: {
        port?: number;
        host?: string;
        dataDir?: string;
        mqttPort?: number;
        mqttHost?: string;
        databasePoolSize?: number;
        logLevel?: string;
      }) => {
        const config = mergeConfig({
          ...env,
          httpPort: flags.port,
          httpHost: flags.host,
          dataDir: flags.dataDir,
          mqttPort: flags.mqttPort,
          mqttHost: flags.mqttHost,
          databasePoolSize: flags.databasePoolSize,
          logLevel: flags.logLevel ?? env.logLevel,
        });
        const cp = await runControlPlane({ config, announce: (text) => io.stderr(text) });
        await new Promise<void>((resolve) => stopOnSignals(cp, resolve));
      },
    );
}
