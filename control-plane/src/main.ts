/**
 * `npm start -w control-plane`: the control plane service, configured from
 * the environment (see main-config.ts); `fleet up` does the same with flags.
 */
import { mergeConfig } from './config.ts';
import { configFromEnvironment } from './main-config.ts';
import { runControlPlane, stopOnSignals } from './run-control-plane.ts';

const cp = await runControlPlane({
  config: mergeConfig(configFromEnvironment(process.env)),
  announce: (text) => process.stderr.write(text),
});
stopOnSignals(cp, () => process.exit(0));
