/**
 * `fleet-agent`: the device daemon.
 *
 *   fleet-agent --control-plane URL [--broker URL] --data-dir DIR
 *               --enroll-token T --hardware H [--tag k=v ...] [--device-id ID]
 *               [--infer-port N | --no-infer]
 *
 * Flags win over the environment (FLEET_CONTROL_PLANE, MQTT_URL,
 * FLEET_AGENT_DATA_DIR, FLEET_ENROLL_TOKEN). SIGINT / SIGTERM stop it cleanly.
 */
import { parseArgs } from 'node:util';
import { isFleetError } from '@fleet/protocol';
import { mergeConfig, type AgentConfig } from './config.ts';
import { runAgent } from './run-agent.ts';

const { values } = parseArgs({
  options: {
    'control-plane': { type: 'string' },
    broker: { type: 'string' },
    'data-dir': { type: 'string' },
    'enroll-token': { type: 'string' },
    hardware: { type: 'string' },
    tag: { type: 'string', multiple: true },
    'device-id': { type: 'string' },
    'infer-port': { type: 'string' },
    'no-infer': { type: 'boolean' },
  },
});

function tagsOf(pairs: string[] = []): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 1) throw new Error(`--tag ${pair}: expected key=value`);
    tags[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return tags;
}

const env = process.env;
const overrides: Partial<AgentConfig> = {
  tags: tagsOf(values.tag),
  ...((values['control-plane'] ?? env.FLEET_CONTROL_PLANE)
    ? { controlPlaneUrl: (values['control-plane'] ?? env.FLEET_CONTROL_PLANE)! }
    : {}),
  ...((values.broker ?? env.MQTT_URL) ? { brokerUrl: (values.broker ?? env.MQTT_URL)! } : {}),
  ...((values['data-dir'] ?? env.FLEET_AGENT_DATA_DIR)
    ? { dataDir: (values['data-dir'] ?? env.FLEET_AGENT_DATA_DIR)! }
    : {}),
  ...((values['enroll-token'] ?? env.FLEET_ENROLL_TOKEN)
    ? { enrollToken: (values['enroll-token'] ?? env.FLEET_ENROLL_TOKEN)! }
    : {}),
  ...(values.hardware ? { hardware: values.hardware } : {}),
  ...(values['device-id'] ? { deviceId: values['device-id'] } : {}),
  ...(values['no-infer']
    ? { inferPort: null }
    : values['infer-port']
      ? { inferPort: Number(values['infer-port']) }
      : {}),
};

const log = (line: string) => process.stderr.write(`${line}\n`);
try {
  const running = await runAgent(mergeConfig(overrides), log);
  const stop = () => {
    void running.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (error) {
  log(isFleetError(error) ? `fleet-agent: ${error.message}` : `fleet-agent: ${String(error)}`);
  process.exit(1);
}
