/**
 * The `fleet keys` and `fleet bundle` commands end to end, in-process with a
 * fixed clock, on real files in a temporary directory.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from './program.ts';
import { encodeEvalData } from '../core/data/eval-data.ts';
import { buildDenseModel } from '../core/onnx/dense-builder.ts';
import { xorshift32 } from '../core/random.ts';
import { encodeOnnx } from '../adapters/onnx/onnx-codec.ts';
import type { ManifestDrift } from '@fleet/protocol';

const NOW_MS = Date.parse('2026-11-26T12:00:00Z');

async function fleet(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    nowMs: () => NOW_MS,
  });
  const json = stdout.trim().startsWith('{') ? (JSON.parse(stdout) as Record<string, unknown>) : {};
  return { code, stdout, stderr, json };
}

let dir: string;
let keys: string;
let bundle: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-cli-'));
  keys = join(dir, 'keys');
  bundle = join(dir, 'model.fleet');
  await writeFile(
    join(dir, 'model.onnx'),
    new Uint8Array(20_000).map((_, i) => (i * 7) & 0x7f),
  );
  await writeFile(join(dir, 'golden.json'), '{"inputs":[],"outputs":[]}');
});
after(() => rm(dir, { recursive: true, force: true }));

const packArgs = (out: string, ...extra: string[]) => [
  'bundle',
  'pack',
  '--name',
  'mnist-2nn',
  '--version',
  '1.0.0',
  '--release',
  '3',
  '--hardware',
  'rpi4,jetson',
  '--part',
  `model.onnx=${join(dir, 'model.onnx')}`,
  '--part',
  `golden.json=${join(dir, 'golden.json')}`,
  '--keys',
  keys,
  '--out',
  out,
  ...extra,
];

describe('fleet keys / fleet bundle', () => {
  it('keys init writes a root and private keys readable by the owner only', async () => {
    const r = await fleet('keys', 'init', '--dir', keys);
    assert.equal(r.code, 0, r.stderr);
    const files = await readdir(join(keys, 'private'));
    assert.equal(files.length, 6); // 3 root + 3 bundle keys by default
    for (const f of files) {
      assert.equal((await stat(join(keys, 'private', f))).mode & 0o777, 0o600, f);
    }
    assert.equal((await stat(join(keys, 'private'))).mode & 0o777, 0o700);
    const again = await fleet('keys', 'init', '--dir', keys);
    assert.equal(again.code, 1, 'a second init must not overwrite the first root');
  });

  it('bundle pack then verify: exit 0 and a JSON summary', async () => {
    const packed = await fleet(...packArgs(bundle));
    assert.equal(packed.code, 0, packed.stderr);
    const r = await fleet(
      'bundle',
      'verify',
      bundle,
      '--root',
      join(keys, 'root.json'),
      '--hardware',
      'rpi4',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json['ok'], true);
    assert.equal(r.json['release'], 3);
    assert.equal(r.json['bundleId'], packed.json['bundleId']);
  });

  it('bundle verify refuses with a non-zero exit and the error code', async () => {
    const root = join(keys, 'root.json');
    const cases: [string[], string][] = [
      [['--installed-release', '3'], 'ROLLBACK'],
      [['--hardware', 'x86'], 'WRONG_HARDWARE'],
    ];
    for (const [extra, code] of cases) {
      const r = await fleet('bundle', 'verify', bundle, '--root', root, ...extra);
      assert.equal(r.code, 1);
      assert.equal(r.json['code'], code);
    }
    const tampered = join(dir, 'tampered.fleet');
    const bytes = new Uint8Array(await readFile(bundle));
    bytes[bytes.length - 5]! ^= 0xff;
    await writeFile(tampered, bytes);
    const r = await fleet('bundle', 'verify', tampered, '--root', root);
    assert.equal(r.code, 1);
    assert.equal(r.json['code'], 'PART_HASH');
  });

  it('bundle pack refuses a path-like part name and writes nothing', async () => {
    const out = join(dir, 'evil.fleet');
    const args = packArgs(out);
    args[args.indexOf(`golden.json=${join(dir, 'golden.json')}`)] =
      `../x=${join(dir, 'golden.json')}`;
    const r = await fleet(...args);
    assert.equal(r.code, 1);
    assert.equal(r.json['code'], 'PART_NAME');
    await assert.rejects(stat(out), /ENOENT/);
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.startsWith('.')),
      [],
    ); // no temp files
  });

  it('bundle inspect prints the manifest without verifying it', async () => {
    const r = await fleet('bundle', 'inspect', bundle);
    assert.equal(r.code, 0);
    assert.equal(r.json['verified'], false);
    assert.equal((r.json['manifest'] as { name: string }).name, 'mnist-2nn');
  });

  it('keys rotate: the new root verifies new bundles, and old bundle keys stop counting', async () => {
    const r = await fleet('keys', 'rotate', '--dir', keys);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json['version'], 2);
    assert.deepEqual((await readdir(join(keys, 'history'))).sort(), ['1.root.json', '2.root.json']);
    const root = join(keys, 'root.json');
    const old = await fleet('bundle', 'verify', bundle, '--root', root);
    assert.equal(old.json['code'], 'SIGNATURE_THRESHOLD');
    const fresh = join(dir, 'v2.fleet');
    assert.equal((await fleet(...packArgs(fresh))).code, 0);
    assert.equal((await fleet('bundle', 'verify', fresh, '--root', root)).code, 0);
  });

  it('keys rotate refuses without a threshold of the current root keys', async () => {
    const privateDir = join(keys, 'private');
    const rootKeys = (await readdir(privateDir)).filter((f) => f.startsWith('root-'));
    for (const f of rootKeys.slice(0, 2)) await rm(join(privateDir, f));
    const before = await readFile(join(keys, 'root.json'));
    const r = await fleet('keys', 'rotate', '--dir', keys);
    assert.equal(r.code, 1);
    assert.equal(r.json['code'], 'SIGNATURE_THRESHOLD');
    assert.deepEqual(await readFile(join(keys, 'root.json')), before);
  });

  it('model export-mnist writes the split as two .fleval files with their digests', async () => {
    const out = join(dir, 'mnist');
    const r = await fleet('model', 'export-mnist', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const files = r.json['files'] as Record<string, { samples: number; sha256: string }>;
    assert.equal(files['mnist-train.fleval']!.samples, 8000);
    assert.equal(files['mnist-test.fleval']!.samples, 2000);
    const bytes = await readFile(join(out, 'mnist-test.fleval'));
    assert.equal(bytes.length, 20 + 2000 * 784 * 4 + 2000);
  });

  it('bundle build: a float ONNX model in, a verifiable int8 bundle out; a corrupt model writes nothing', async () => {
    const rand = xorshift32(3);
    const f = (n: number, scale: number) =>
      Float32Array.from({ length: n }, () => (rand() / 2 ** 32 - 0.5) * scale);
    const onnxPath = join(dir, 'float.onnx');
    await writeFile(
      onnxPath,
      encodeOnnx(
        buildDenseModel({
          inputSize: 12,
          softmaxOutput: true,
          layers: [
            { units: 16, activation: 'relu', weights: f(12 * 16, 1), bias: f(16, 0.1) },
            { units: 3, activation: 'linear', weights: f(16 * 3, 3), bias: f(3, 0.1) },
          ],
        }),
      ),
    );
    const evalPath = join(dir, 'eval.fleval');
    await writeFile(
      evalPath,
      encodeEvalData({
        sampleCount: 50,
        featureCount: 12,
        classCount: 0,
        features: f(600, 2),
        labels: null,
      }),
    );
    const build = (onnx: string, out: string, ...extra: string[]) =>
      fleet(
        'bundle',
        'build',
        '--onnx',
        onnx,
        '--name',
        'tiny',
        '--version',
        '1.0.0',
        '--release',
        '4',
        '--hardware',
        'rpi4',
        '--eval-data',
        evalPath,
        '--keys',
        keys,
        '--out',
        out,
        ...extra,
      );
    const out = join(dir, 'tiny.fleet');
    const r = await build(onnxPath, out, '--parent', '0.9.0@3');
    assert.equal(r.code, 0, r.stderr);
    const inspected = await fleet('bundle', 'inspect', out);
    const lineage = (inspected.json['manifest'] as { lineage: Record<string, unknown> }).lineage;
    assert.deepEqual(lineage['parent'], { version: '0.9.0', release: 3 });
    assert.deepEqual(lineage['producer'], { kind: 'import' });
    assert.match(r.stderr, /compressed bytes/);
    assert.equal(r.json['floatAccuracy'], null); // unlabelled data: agreement only
    const v = await fleet(
      'bundle',
      'verify',
      out,
      '--root',
      join(keys, 'root.json'),
      '--hardware',
      'rpi4',
    );
    assert.equal(v.code, 0, v.stderr);
    assert.deepEqual(
      (v.json['parts'] as { name: string }[]).map((p) => p.name),
      ['model.onnx', 'golden.json', 'drift-profile.bin'],
    );
    // drift by default: 8 inputs, confidence, class, 5 PCA projections, PCA error
    const drift = (inspected.json['manifest'] as { drift: ManifestDrift }).drift;
    assert.equal(drift.signals.length, 16);
    assert.equal(drift.sampleRate, 0.1);
    assert.match(r.stderr, /drift profile drift-profile.bin: 16 signals/);
    assert.equal((r.json['drift'] as { samples: number }).samples, 50);

    const chosen = join(dir, 'chosen.fleet');
    const c = await build(
      onnxPath,
      chosen,
      '--drift-signals',
      'input:3,confidence',
      '--drift-sample-rate',
      '0.5',
    );
    assert.equal(c.code, 0, c.stderr);
    const chosenDrift = (
      (await fleet('bundle', 'inspect', chosen)).json['manifest'] as { drift: ManifestDrift }
    ).drift;
    assert.deepEqual(
      chosenDrift.signals.map((s) => s.name),
      ['input.3', 'confidence'],
    );
    assert.equal(chosenDrift.sampleRate, 0.5);
    const none = join(dir, 'none.fleet');
    assert.equal((await build(onnxPath, none, '--no-drift')).code, 0);
    const plain = (await fleet('bundle', 'inspect', none)).json['manifest'] as Record<
      string,
      unknown
    >;
    assert.equal(plain['drift'], undefined);
    assert.equal((await build(onnxPath, none, '--drift-signals', 'input:x')).code, 2);
    assert.equal((await build(onnxPath, none, '--drift-sample-rate', '0')).code, 2);

    const corrupt = join(dir, 'corrupt.onnx');
    await writeFile(corrupt, (await readFile(onnxPath)).subarray(0, 100));
    const bad = await build(corrupt, join(dir, 'corrupt.fleet'));
    assert.equal(bad.code, 1);
    assert.equal(bad.json['code'], 'MODEL_MALFORMED');
    await assert.rejects(stat(join(dir, 'corrupt.fleet')), /ENOENT/);
  });

  it('bundle build --training-weights: int8 by default with --from, none with --onnx unless asked', async () => {
    const rand = xorshift32(9);
    const f = (n: number, scale: number) =>
      Float32Array.from({ length: n }, () => (rand() / 2 ** 32 - 0.5) * scale);
    const model = buildDenseModel({
      inputSize: 12,
      softmaxOutput: true,
      layers: [
        { units: 16, activation: 'relu', weights: f(12 * 16, 1), bias: f(16, 0.1) },
        { units: 3, activation: 'linear', weights: f(16 * 3, 3), bias: f(3, 0.1) },
      ],
    });
    const architecture = {
      kind: 'dense',
      inputSize: 12,
      softmaxOutput: true,
      layers: [
        { units: 16, activation: 'relu' },
        { units: 3, activation: 'linear' },
      ],
    };
    const ref = join(dir, 'ref');
    await mkdir(ref);
    await writeFile(join(ref, 'model.onnx'), encodeOnnx(model));
    const onnxPath = join(ref, 'model.onnx');
    const evalPath = join(dir, 'train-eval.fleval');
    await writeFile(
      evalPath,
      encodeEvalData({
        sampleCount: 30,
        featureCount: 12,
        classCount: 0,
        features: f(360, 2),
        labels: null,
      }),
    );
    const build = (source: string[], out: string, ...extra: string[]) =>
      fleet(
        'bundle',
        'build',
        ...source,
        '--name',
        'tiny',
        '--version',
        '1.0.0',
        '--release',
        '5',
        '--hardware',
        'rpi4',
        '--eval-data',
        evalPath,
        '--keys',
        keys,
        '--out',
        out,
        '--no-drift',
        ...extra,
      );
    const inspect = async (file: string) =>
      (await fleet('bundle', 'inspect', file)).json['manifest'] as {
        parts: { name: string; mediaType: string }[];
        training?: unknown;
      };
    type Training = { part: string; encoding: string; partBytes: number; parameters: number };

    const plain = join(dir, 'plain.fleet');
    assert.equal((await build(['--onnx', onnxPath], plain)).code, 0);
    assert.equal((await inspect(plain)).training, undefined);

    const int8 = await build(
      ['--onnx', onnxPath],
      join(dir, 't8.fleet'),
      '--training-weights',
      'int8',
    );
    assert.equal(int8.code, 0, int8.stderr);
    const t8 = int8.json['training'] as Training;
    assert.deepEqual(
      [t8.part, t8.encoding, t8.parameters],
      ['weights.ftns', 'int8', 12 * 16 + 16 + 16 * 3 + 3],
    );
    assert.match(int8.stderr, /training weights weights.ftns: int8, \d+ bytes for 259 parameters/);
    const m8 = await inspect(join(dir, 't8.fleet'));
    assert.deepEqual(m8.training, { architecture, weightsPart: 'weights.ftns' });
    assert.equal(
      m8.parts.find((p) => p.name === 'weights.ftns')?.mediaType,
      'application/vnd.fleet.tensor-set',
    );
    const f32 = await build(
      ['--onnx', onnxPath],
      join(dir, 't32.fleet'),
      '--training-weights',
      'float32',
    );
    assert.equal(f32.code, 0, f32.stderr);
    assert.ok((f32.json['training'] as Training).partBytes > t8.partBytes);
    assert.equal((await build(['--onnx', onnxPath], plain, '--training-weights', 'fp16')).code, 2);

    // A graph that is not a plain dense chain cannot carry training weights.
    const odd = join(dir, 'odd.onnx');
    await writeFile(
      odd,
      encodeOnnx({
        ...model,
        nodes: model.nodes.map((n) => (n.opType === 'Relu' ? { ...n, opType: 'Tanh' } : n)),
      }),
    );
    const refused = await build(
      ['--onnx', odd],
      join(dir, 'odd.fleet'),
      '--training-weights',
      'int8',
    );
    assert.equal(refused.code, 1);
    assert.equal(refused.json['code'], 'TRAINING_SPEC');
    assert.match(String(refused.json['message']), /Tanh/);
    await assert.rejects(stat(join(dir, 'odd.fleet')), /ENOENT/);

    // --from: the architecture of reference.json, int8 by default; read from the graph without one.
    const report = { datasetDigest: 'a'.repeat(64), hyperparameters: { epochs: 1 } };
    await writeFile(join(ref, 'reference.json'), JSON.stringify({ ...report, architecture }));
    const fromRef = await build(['--from', ref], join(dir, 'from.fleet'));
    assert.equal(fromRef.code, 0, fromRef.stderr);
    assert.equal((fromRef.json['training'] as Training).encoding, 'int8');
    assert.deepEqual((await inspect(join(dir, 'from.fleet'))).training, {
      architecture,
      weightsPart: 'weights.ftns',
    });
    const none = await build(
      ['--from', ref],
      join(dir, 'from-none.fleet'),
      '--training-weights',
      'none',
    );
    assert.equal(none.json['training'], null);
    await writeFile(join(ref, 'reference.json'), JSON.stringify(report));
    const derived = await build(['--from', ref], join(dir, 'from2.fleet'));
    assert.equal(derived.code, 0, derived.stderr);
    assert.deepEqual((await inspect(join(dir, 'from2.fleet'))).training, m8.training);
    // A reference.json that declares another architecture than its model.onnx is refused.
    const wrong = {
      ...architecture,
      layers: [{ units: 16, activation: 'linear' }, architecture.layers[1]],
    };
    await writeFile(
      join(ref, 'reference.json'),
      JSON.stringify({ ...report, architecture: wrong }),
    );
    const mismatch = await build(['--from', ref], join(dir, 'from3.fleet'));
    assert.equal(mismatch.json['code'], 'TRAINING_SPEC');
    assert.match(String(mismatch.json['message']), /layer 0's activation is linear/);
    await writeFile(
      join(ref, 'reference.json'),
      JSON.stringify({ ...report, architecture: { kind: 'dense', inputSize: 12 } }),
    );
    const invalid = await build(['--from', ref], join(dir, 'from4.fleet'));
    assert.equal(invalid.json['code'], 'TRAINING_SPEC');
    assert.match(String(invalid.json['message']), /reference.json architecture layers/);
  });

  it('usage errors exit 2', async () => {
    assert.equal((await fleet('bundle', 'pack', '--name', 'x')).code, 2);
  });

  it('the fleet bin runs from the repo root through npx', () => {
    const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
    const r = spawnSync('npx', ['--no-install', 'fleet', 'bundle', 'inspect', bundle], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { verified: boolean }).verified, false);
  });
});
