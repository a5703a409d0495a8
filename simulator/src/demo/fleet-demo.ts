/**
 * The demo (`npm run demo`, the README's main job): a whole fleet taking a
 * model over the air, on the embedded defaults.
 *
 *   1. a control plane (PGlite and aedes in the demo dir) and a trust root
 *   2. the reference MNIST model: trained once (7 epochs), then loaded from
 *      .fleet/cache/
 *   3. bundle v1: quantized to int8, evaluated, signed (2 of 3 bundle keys),
 *      with the training part (its int8 weights: federated rounds start there)
 *   4. 100 real agents enrol and connect, then serve MNIST digits
 *   5. v1 rolls out in waves (1%, 10%, 50%, 100%) with live progress; every
 *      agent commits it only after probation; the fleet's accuracy is measured
 *   6. v2, sabotaged after training (its last layer zeroed, still validly
 *      signed and passing its self-test), rolls out: its canary fails
 *      probation, the rollout aborts, and the fleet still serves v1
 *   7. drift: every bundle carries a drift profile (baselines from training
 *      digits); agents sample their inferences into sketches and flush them,
 *      signed. A fifth of the fleet (cohort=cam-b) starts seeing rotated,
 *      noisier digits: the control plane flags that cohort, naming the
 *      signals that moved, and not the others. cam-b's users label the
 *      answers they get (feedback), so its agents hold labelled samples
 *   8. federated learning: the alert starts a round on cam-b by itself (the
 *      model's policy, set before the drift: low risk, auto-promotion, and
 *      flOnDrift with an eval set of held-out digits shifted like cam-b's);
 *      every cam-b agent trains on its own samples and sends a signed update;
 *      the control plane aggregates them, scores the candidate against v1 on
 *      the eval set, builds and signs it (the demo's bundle keys, in the demo
 *      dir), registers it with the round in its lineage and rolls it out to
 *      cam-b; cam-b's accuracy on other held-out shifted digits is shown
 *      before and after, and cam-a still serves v1
 *
 *   npm run demo [-- --dir DIR --devices N --retrain]
 *
 * It ends with a table of every checked outcome, and exits 1 if any is not
 * what the demo says should happen.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  buildBundle,
  buildDenseModel,
  createKeyDirectory,
  createOnnxRunner,
  decodeOnnx,
  denseArchitectureFromOnnx,
  encodeOnnx,
  initTrust,
  mnistSplit,
  planDrift,
  trainReferenceModel,
  type DriftPlan,
  type EvalData,
} from '@fleet/bundles';
import {
  formatRollout,
  mergeConfig,
  runControlPlane,
  type RolloutView,
} from '@fleet/control-plane';
import { bundleIdOf, type Signer } from '@fleet/protocol';
import { createDemoReport } from './demo-report.ts';
import { driftStage, type Traffic } from './drift-stage.ts';
import { FIELD_DIGITS, federatedStage, prepareFederatedRounds } from './fl-stage.ts';
import { startSimFleet } from '../fleet/sim-fleet.ts';
import { runTraffic, startBackgroundTraffic } from '../fleet/mnist-traffic.ts';
import type { DigitShift } from '../fleet/digit-shift.ts';
import type { SimAgent } from '../fleet/sim-fleet.ts';

const { values: flags } = parseArgs({
  options: {
    dir: { type: 'string', default: '.fleet/demo' },
    cache: { type: 'string', default: '.fleet/cache' },
    devices: { type: 'string', default: '100' },
    retrain: { type: 'boolean', default: false },
  },
});
const workDir = resolve(flags.dir);
const cacheDir = resolve(flags.cache);
const deviceCount = Number(flags.devices);
const out = (text: string) => void process.stdout.write(text);
const report = createDemoReport(out);
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
/** Drift windows here are 10 s (60 s by default), and agents flush at least that often. */
const DRIFT_WINDOW_MS = 10_000;
/** The drifted cohort's camera: knocked askew and dusty. */
const CAMERA_SHIFT: DigitShift = { rotateDegrees: 25, noiseSigma: 0.15 };
const cohortOf = (index: number) => (index % 5 === 4 ? 'cam-b' : 'cam-a');

/**
 * Epochs of the demo's reference training, against the bundle factory's 15:
 * on a fresh machine the demo trains before anything else, and 15 epochs took
 * 95 s of a 210 s first run on a 2-core machine (the issue asks for the whole
 * demo under 3 minutes). Seven, the last three at the settling rate, reach
 * about 97% (measured).
 */
const DEMO_REFERENCE_EPOCHS = 7;

/** The reference model's float ONNX bytes: from the cache, or trained now. */
async function referenceModel(train: EvalData, test: EvalData): Promise<Uint8Array> {
  const path = join(cacheDir, 'mnist-2nn-reference.onnx');
  if (!flags.retrain) {
    const cached = await readFile(path).catch(() => null);
    if (cached) {
      report.note(`loaded the trained reference model from ${path} (--retrain to train it again)`);
      return new Uint8Array(cached);
    }
  }
  report.note(
    `training the reference 784-200-200-10 model with TensorFlow.js, ${DEMO_REFERENCE_EPOCHS} epochs (once)`,
  );
  const trained = await trainReferenceModel({
    train,
    test,
    epochs: DEMO_REFERENCE_EPOCHS,
    onEpoch: (e) =>
      out(
        `    epoch ${e.epoch}/${e.epochs}  loss ${e.loss.toFixed(3)}  test accuracy ${(e.testAccuracy * 100).toFixed(2)}%\n`,
      ),
  });
  const bytes = encodeOnnx(buildDenseModel(trained.architecture));
  await mkdir(cacheDir, { recursive: true });
  await writeFile(path, bytes);
  return bytes;
}

/** The same model with its output layer zeroed: every answer becomes a uniform 10% guess. */
function sabotage(onnx: Uint8Array): Uint8Array {
  const model = decodeOnnx(onnx);
  const last = model.nodes.filter((n) => n.opType === 'MatMul' || n.opType === 'Gemm').at(-1)!;
  const weights = model.initializers.find((t) => t.name === last.inputs[1])!;
  (weights.data as Float32Array).fill(0); // the reference model's weights are float32
  return encodeOnnx(model);
}

async function build(
  floatModel: Uint8Array,
  test: EvalData,
  drift: { data: EvalData; plan: DriftPlan },
  signers: Signer[],
  version: string,
  release: number,
  training: boolean,
) {
  const now = Date.now();
  const evalData = {
    ...test,
    sampleCount: 500,
    features: test.features.subarray(0, 500 * 784),
    labels: test.labels!.subarray(0, 500),
  };
  return buildBundle(
    {
      floatModel,
      evalData,
      signers,
      maxAccuracyDropPoints: 100, // v2's sabotage is in the float model; the factory's budget is float vs int8
      // The start weights of federated rounds (v1 only: v2 is aborted before any round could use it).
      ...(training
        ? {
            training: {
              architecture: denseArchitectureFromOnnx(decodeOnnx(floatModel)).architecture,
              weights: 'int8' as const,
            },
          }
        : {}),
      drift: {
        data: drift.data,
        plan: {
          ...drift.plan,
          spec: {
            ...drift.plan.spec,
            flush: { maxSamples: 5_000, maxIntervalMs: DRIFT_WINDOW_MS },
          },
        },
      },
      manifest: {
        name: 'mnist-2nn',
        version,
        release,
        hardware: ['sim-cpu'],
        minAgentVersion: '0.1.0',
        issuedAt: new Date(now - 60_000).toISOString(),
        expires: new Date(now + 30 * 86_400_000).toISOString(),
        lineage: { producer: { kind: 'train-reference' } },
      },
    },
    { decode: decodeOnnx, encode: encodeOnnx, createRunner: createOnnxRunner },
  );
}

async function main(): Promise<void> {
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  const keysDir = join(workDir, 'keys');

  report.step('operator: fleet up (embedded PGlite and MQTT broker, in the demo dir)');
  const cp = await runControlPlane({
    config: mergeConfig({
      httpPort: 0,
      mqttPort: 0,
      dataDir: join(workDir, 'control-plane'),
      logLevel: 'error', // the drift alert is shown from the API below, not as a log line
      rollouts: { tickIntervalMs: 250, batchWindowMs: 25 },
      drift: { windowMs: DRIFT_WINDOW_MS, graceMs: 2_000, tickIntervalMs: 250 },
      // Federated candidates are signed with the demo's bundle keys (written below).
      fl: { signingKeysDir: keysDir, tickIntervalMs: 250 },
    }),
    announce: () => undefined,
  });
  const admin = cp.firstAdminToken!;
  const api = async <T>(
    method: string,
    path: string,
    body?: unknown,
    type = 'application/json',
  ): Promise<T> => {
    const response = await fetch(`${cp.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${admin}`,
        ...(body === undefined ? {} : { 'content-type': type }),
      },
      ...(body === undefined
        ? {}
        : { body: body instanceof Uint8Array ? Buffer.from(body) : JSON.stringify(body) }),
    });
    const json = (await response.json()) as T & { error?: { code: string; message: string } };
    if (!response.ok)
      throw new Error(`${method} ${path}: ${json.error?.code} ${json.error?.message}`);
    return json;
  };
  report.note(`API ${cp.url}, broker ${cp.broker!.deviceUrl}`);

  let fleet: Awaited<ReturnType<typeof startSimFleet>> | null = null;
  let traffic: ReturnType<typeof startBackgroundTraffic> | null = null;
  try {
    report.step('operator: trust root with 2-of-3 bundle keys, installed on the control plane');
    const trust = await initTrust({
      root: { keys: 1, threshold: 1 },
      bundle: { keys: 3, threshold: 2 },
      expires: new Date(Date.now() + 365 * 86_400_000).toISOString(),
    });
    const signers = trust.newKeys.filter((k) => k.role === 'bundle').slice(0, 2);
    await api('PUT', '/v1/trust/root', trust.rootBytes, 'application/octet-stream');
    await createKeyDirectory(keysDir).writeInitial(trust);
    report.note(
      `keys in ${keysDir} (fleet keys init layout): the control plane signs federated candidates with them`,
    );

    report.step('data scientist: the reference MNIST model');
    const { train, test } = await mnistSplit();
    const floatModel = await referenceModel(train, test);
    const driftData: EvalData = {
      ...train,
      sampleCount: 2_000,
      features: train.features.subarray(0, 2_000 * 784),
      labels: train.labels!.subarray(0, 2_000),
    };
    const drift = {
      data: driftData,
      plan: planDrift(driftData, { onProgress: (line) => out(`    ${line}\n`) }),
    };

    report.step(
      'bundle factory: v1 (int8, evaluated, golden vectors, signed) pushed to the registry',
    );
    const v1 = await build(floatModel, test, drift, signers, '1.0.0', 1, true);
    await api('POST', '/v1/models', v1.bundle, 'application/octet-stream');
    report.note(
      `v1: ${v1.bundle.length} bytes, int8 accuracy ${((v1.evaluation.int8.accuracy ?? 0) * 100).toFixed(2)}% on 500 test digits; training part ${v1.training?.partBytes ?? 0} bytes (int8 start weights for federated rounds)`,
    );

    report.step(
      `fleet: ${deviceCount} real agents enrol and connect (own keys, MQTT sessions, state)`,
    );
    fleet = await startSimFleet({
      controlPlaneUrl: cp.url!,
      operatorToken: admin,
      mqttUrl: cp.broker!.deviceUrl,
      count: deviceCount,
      idPrefix: 'demo',
      tags: (i) => ({ site: i % 2 === 0 ? 'berlin' : 'lagos', cohort: cohortOf(i) }),
      agentOptions: {
        tickIntervalMs: 100,
        healthIntervalMs: 0,
        downloader: { firstRepairDelayMs: 500 },
      },
      onProgress: (n, total) => {
        if (n % 25 === 0 || n === total) out(`    ${n}/${total} agents online (${elapsed()})\n`);
      },
    });
    const agents = fleet.agents;
    // Traffic draws from the first FIELD_DIGITS test digits; the rest are held out for step 8.
    const field: EvalData = {
      ...test,
      sampleCount: FIELD_DIGITS,
      features: test.features.subarray(0, FIELD_DIGITS * 784),
      labels: test.labels!.subarray(0, FIELD_DIGITS),
    };
    traffic = startBackgroundTraffic(() => agents, field, {
      perAgent: 2,
      batch: 2,
      intervalMs: 100,
    });

    const policy = {
      target: 'all',
      waves: '1%,10%,50%,100%',
      bake: '2s',
      probation: '3s',
      deviceTimeout: '60s',
      maxFailure: '2%',
      successRatio: '95%',
      minConfidence: 0.5,
      driftSampleRate: '100%', // the bundle's default is 10%; the demo's windows are short
    };
    const watch = async (id: string): Promise<RolloutView> => {
      let last = '';
      for (;;) {
        const view = await api<RolloutView>('GET', `/v1/rollouts/${id}`);
        const screen = formatRollout({ ...view, devices: [] });
        if (screen !== last) out(`${screen.trimEnd().replace(/^/gm, '    ')}\n`);
        last = screen;
        if (view.status === 'completed' || view.status === 'aborted') return view;
        await new Promise((r) => setTimeout(r, 750));
      }
    };
    const servingCount = (version: string) =>
      agents.filter((a) => a.host.inference.active()?.version === version).length;

    report.step(
      'operator: fleet rollout create --model mnist-2nn@1.0.0 --target all --waves 1%,10%,50%,100%',
    );
    const r1 = await watch(
      (await api<RolloutView>('POST', '/v1/rollouts', { model: 'mnist-2nn@1.0.0', ...policy })).id,
    );
    report.outcome('v1 rollout', 'completed', r1.status);
    report.outcome(
      'agents that committed v1 after probation',
      `${deviceCount}`,
      String(r1.counts['succeeded'] ?? 0),
    );
    report.outcome('agents serving v1', `${deviceCount}`, String(servingCount('1.0.0')));
    const v1Traffic = await runTraffic(agents, test, { perAgent: 20, batch: 10, offset: 500 });
    const v1Acc = v1Traffic['1.0.0'];
    const accuracy = v1Acc && v1Acc.total > 0 ? (v1Acc.correct / v1Acc.total) * 100 : 0;
    report.note(
      `fleet accuracy on v1: ${accuracy.toFixed(2)}% of ${v1Acc?.total ?? 0} digits (labels from MNIST)`,
    );
    report.outcome(
      'fleet accuracy on v1 above 90%',
      'yes',
      accuracy > 90 ? `yes (${accuracy.toFixed(2)}%)` : `no (${accuracy.toFixed(2)}%)`,
    );

    report.step('bundle factory: v2, sabotaged (output layer zeroed), still validly signed');
    const v2 = await build(sabotage(floatModel), test, drift, signers, '2.0.0', 2, false);
    await api('POST', '/v1/models', v2.bundle, 'application/octet-stream');
    report.note(
      `v2: ${v2.bundle.length} bytes (bundle ${(await bundleIdOf(v2.bundle)).slice(0, 12)}…), signed by 2 of 3 keys, passes verification`,
    );

    report.step('operator: fleet rollout create --model mnist-2nn@2.0.0 (same waves and gates)');
    const r2 = await watch(
      (await api<RolloutView>('POST', '/v1/rollouts', { model: 'mnist-2nn@2.0.0', ...policy })).id,
    );
    const detail = await api<RolloutView>('GET', `/v1/rollouts/${r2.id}`);
    report.outcome('v2 rollout', 'aborted', r2.status);
    report.note(r2.reason ?? '');
    const canaryFailures = (detail.devices ?? []).filter(
      (d) => d.wave === 1 && d.status === 'failed',
    );
    // The agent's own verdict (PROBATION_FAILED) or the control plane's gate on the
    // probation health it reported (HEALTH_GATE), whichever lands first.
    const code = canaryFailures[0]?.error?.code ?? 'none';
    report.outcome(
      'canary failed probation',
      'failed probation',
      code === 'PROBATION_FAILED' || code === 'HEALTH_GATE' ? `failed probation (${code})` : code,
    );
    report.note(canaryFailures[0]?.error?.message ?? '');
    report.outcome(
      'devices beyond the canary wave that got v2',
      '0',
      String((detail.devices ?? []).filter((d) => d.wave > 1 && d.attempts > 0).length),
    );
    await new Promise((r) => setTimeout(r, 500));
    report.outcome('agents still serving v1', `${deviceCount}`, String(servingCount('1.0.0')));

    const audit = await api<{ entries: Array<{ action: string }> }>(
      'GET',
      '/v1/audit?after=0&limit=1000',
    );
    report.outcome(
      'abort recorded in the audit log',
      'yes',
      audit.entries.some((e) => e.action === 'rollout.aborted') ? 'yes' : 'no',
    );

    const replaceTraffic = (next: Traffic) => {
      const previous = traffic;
      traffic = next;
      return previous?.stop();
    };
    const flContext = {
      api,
      report,
      out,
      elapsed,
      agents,
      cohort: (agent: SimAgent) => cohortOf(agents.indexOf(agent)),
      shift: CAMERA_SHIFT,
      watchRollout: watch,
    };
    const heldOut = await prepareFederatedRounds(flContext, test);

    await driftStage({
      api,
      agents: () => agents,
      field,
      replaceTraffic,
      report,
      out,
      windowMs: DRIFT_WINDOW_MS,
      shift: CAMERA_SHIFT,
      inDriftedCohort: (index) => cohortOf(index) === 'cam-b',
    });

    // Step 8. Light traffic from here (probation still has answers to judge; cam-b still shifted).
    await federatedStage(flContext, heldOut, async () => {
      const camB = new Set(agents.filter((_, i) => cohortOf(i) === 'cam-b'));
      await replaceTraffic(
        startBackgroundTraffic(() => agents, field, {
          perAgent: 2,
          batch: 2,
          intervalMs: 100,
          shift: (agent) => (camB.has(agent) ? CAMERA_SHIFT : null),
        }),
      );
    });
  } finally {
    await traffic?.stop();
    await fleet?.close();
    await cp.close();
  }

  const failed = report.failed();
  const checkWidth = Math.max(...report.outcomes.map((o) => o.check.length));
  const expectedWidth = Math.max(8, ...report.outcomes.map((o) => o.expected.length));
  out(`\n       ${'outcome'.padEnd(checkWidth)} ${'expected'.padEnd(expectedWidth)} got\n`);
  for (const o of report.outcomes) {
    out(
      `  ${o.got.startsWith(o.expected) ? 'ok  ' : 'FAIL'} ${o.check.padEnd(checkWidth)} ${o.expected.padEnd(expectedWidth)} ${o.got}\n`,
    );
  }
  out(
    `\n${report.outcomes.length - failed.length} of ${report.outcomes.length} outcomes as expected in ${elapsed()}; files in ${workDir}\n`,
  );
  process.exitCode = failed.length === 0 ? 0 : 1;
}

await main();
