/**
 * The environment variables the control plane reads, turned into config
 * overrides. Called only from the programs' entry points (main.ts, cli/main.ts).
 */
import type { Config } from './config.ts';

export function configFromEnvironment(env: Record<string, string | undefined>): Partial<Config> {
  const number = (name: string) => (env[name] === undefined ? undefined : Number(env[name]));
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    databasePoolSize: number('FLEET_DATABASE_POOL_SIZE'),
    mqttUrl: env.MQTT_URL || undefined,
    mqttShareGroup: env.FLEET_MQTT_SHARE_GROUP || undefined,
    httpPort: number('FLEET_HTTP_PORT'),
    httpHost: env.FLEET_HTTP_HOST,
    dataDir: env.FLEET_DATA_DIR,
    mqttPort: number('FLEET_MQTT_PORT'),
    logLevel: env.FLEET_LOG_LEVEL,
  };
}
