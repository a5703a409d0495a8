/**
 * The trust demo: an operator's trust ceremony and a device's view of it,
 * then a real control plane managing that trust root, its bundles and a
 * device (control-plane-stage.ts), on real keys and files under .fleet/demo/
 * (recreated on every run).
 *
 *   npm run demo:trust [-- --dir DIR]
 *
 * It runs the same `fleet` commands an operator would, verifies bundles
 * exactly as an agent will (with a pinned root and an installed release), and
 * shows each attack of THREATS.md it covers being refused. Exit code 0 only when
 * every outcome is the expected one. `npm run demo:trust` runs it; the main
 * demo is the fleet rollout (fleet-demo.ts).
 */
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runCli } from '@fleet/bundles';
import { createDemoReport } from './demo-report.ts';
import { controlPlaneStage } from './control-plane-stage.ts';
import {
  isFleetError,
  loadTrustedRoot,
  updateRootChain,
  verifyBundle,
  type TrustedRoot,
} from '@fleet/protocol';

const { values: flags } = parseArgs({
  options: { dir: { type: 'string', default: '.fleet/demo' } },
});
const workDir = resolve(flags.dir);
const keysDir = join(workDir, 'keys');
const quietIo = {
  stdout: () => undefined,
  stderr: (t: string) => void process.stderr.write(t),
  nowMs: () => Date.now(),
};

async function fleet(...argv: string[]): Promise<void> {
  const code = await runCli(argv, quietIo);
  if (code !== 0) throw new Error(`fleet ${argv.join(' ')} exited ${code}`);
}

const report = createDemoReport((text) => void process.stdout.write(text));
const step = (text: string) => report.step(text);

async function deviceVerifies(
  check: string,
  expected: string,
  bundlePath: string,
  device: { root: TrustedRoot; installedRelease: number; hardwareClass: string },
): Promise<void> {
  let got: string;
  try {
    const v = await verifyBundle(new Uint8Array(await readFile(bundlePath)), {
      ...device,
      nowMs: Date.now(),
    });
    got = `ACCEPTED release ${v.manifest.release}`;
  } catch (error) {
    got = isFleetError(error) ? error.code : `crash: ${String(error)}`;
  }
  report.outcome(check, expected, got);
}

function payload(seed: number, length: number): Uint8Array {
  return new Uint8Array(length).map((_, i) => ((i * 2654435761 + seed) >>> 24) & 0xff);
}

async function pack(out: string, release: number, keys = keysDir): Promise<void> {
  await fleet(
    'bundle',
    'pack',
    '--name',
    'demo-model',
    '--version',
    `1.${release}.0`,
    '--release',
    String(release),
    '--hardware',
    'rpi4',
    '--part',
    `model.bin=${join(workDir, 'model.bin')}`,
    '--keys',
    keys,
    '--out',
    out,
  );
}

async function main(): Promise<void> {
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  await writeFile(join(workDir, 'model.bin'), payload(1, 200_000));

  step('operator: fleet keys init (root 2-of-3, bundle signing 2-of-3)');
  await fleet('keys', 'init', '--dir', keysDir);
  step('operator: fleet bundle pack release 1 for rpi4');
  const v1 = join(workDir, 'v1.fleet');
  await pack(v1, 1);

  step('device (rpi4) pins root v1 and checks what it receives');
  const pinned = await loadTrustedRoot(new Uint8Array(await readFile(join(keysDir, 'root.json'))));
  const fresh = { root: pinned, installedRelease: 0, hardwareClass: 'rpi4' };
  await deviceVerifies('genuine release 1', 'ACCEPTED', v1, fresh);

  const tampered = join(workDir, 'tampered.fleet');
  const bytes = new Uint8Array(await readFile(v1));
  bytes[bytes.length - 1000]! ^= 0x01;
  await writeFile(tampered, bytes);
  await deviceVerifies('one flipped bit in the model', 'PART_HASH', tampered, fresh);
  await deviceVerifies('replay of release 1 after installing it', 'ROLLBACK', v1, {
    ...fresh,
    installedRelease: 1,
  });
  await deviceVerifies('the same bundle on a jetson', 'WRONG_HARDWARE', v1, {
    ...fresh,
    hardwareClass: 'jetson',
  });

  step('attacker steals one genuine bundle key and signs alone (threshold is 2)');
  const stolen = join(workDir, 'stolen-keys');
  await mkdir(join(stolen, 'private'), { recursive: true });
  await copyFile(join(keysDir, 'root.json'), join(stolen, 'root.json'));
  const oneKey = (await readdir(join(keysDir, 'private'))).find((f) => f.startsWith('bundle-'))!;
  await copyFile(join(keysDir, 'private', oneKey), join(stolen, 'private', oneKey));
  const forged = join(workDir, 'forged.fleet');
  await pack(forged, 9, stolen);
  await deviceVerifies('release 9 signed by one stolen key', 'SIGNATURE_THRESHOLD', forged, fresh);

  step('operator: fleet keys rotate (new root and bundle keys, root v2)');
  await fleet('keys', 'rotate', '--dir', keysDir);
  const v2 = join(workDir, 'v2.fleet');
  await writeFile(join(workDir, 'model.bin'), payload(2, 200_000));
  await pack(v2, 2);
  await deviceVerifies('release 2 under the old pinned root', 'SIGNATURE_THRESHOLD', v2, {
    ...fresh,
    installedRelease: 1,
  });
  const chain = [new Uint8Array(await readFile(join(keysDir, 'history', '2.root.json')))];
  const rotated = await updateRootChain(pinned, chain, Date.now());
  process.stdout.write(`  device followed the root chain to v${rotated.metadata.version}\n`);
  await deviceVerifies('release 2 after the root update', 'ACCEPTED', v2, {
    ...fresh,
    root: rotated,
    installedRelease: 1,
  });
  await deviceVerifies('release 1 signed by rotated-out keys', 'SIGNATURE_THRESHOLD', v1, {
    ...fresh,
    root: rotated,
  });

  await controlPlaneStage({
    workDir,
    keysDir,
    bundles: { v1, v2, tampered, forged },
    report,
    cli: quietIo,
  });

  const failed = report.failed();
  const total = report.outcomes.length;
  process.stdout.write(
    `\n${total - failed.length} of ${total} outcomes as expected; files in ${workDir}\n`,
  );
  process.exitCode = failed.length === 0 ? 0 : 1;
}

await main();
