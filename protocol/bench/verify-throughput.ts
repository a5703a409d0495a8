/**
 * Bundle verification throughput, Fleet against the practical limit.
 *
 *   npm run bench:protocol
 *
 * For 1 MB and 20 MB bundles of int8-like weights (deflate-raw, 2-of-3 bundle
 * signatures) it times `verifyBundle` (threshold signatures, SHA-256 of every
 * stored and inflated part, bounded inflate), the same with the portable fflate
 * inflater and with Node's zlib inflater (@fleet/protocol/node, what Node
 * consumers pass), and the same work done directly with Node's built-in crypto
 * and zlib.
 * Progress lines first; the last line is one JSON object with the figures.
 * Target (foundation issue): Fleet within 3x of the Node figure.
 */
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { testTrust, NOW_MS } from '../src/__fixtures__/trust.ts';
import {
  DEFAULT_BUNDLE_LIMITS,
  fromBase64,
  fromUtf8,
  packBundle,
  parseManifest,
  portableInflate,
  preAuthEncoding,
  readContainer,
  splitParts,
  verifyBundle,
  type SignedEnvelope,
  type VerifyOptions,
} from '../src/index.ts';
import { nodeInflate } from '../node/index.ts';

const MB = 1_000_000;

/** Weights shaped like an int8-quantized layer: bell-shaped around zero. */
function int8Weights(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = 0x9e3779b9;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
  for (let i = 0; i < length; i++) {
    const g = (next() + next() + next() + next() - 2) * 40;
    out[i] = Math.max(-127, Math.min(127, Math.round(g))) & 0xff;
  }
  return out;
}

async function median(runs: number, fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** The same checks with Node's built-ins: signatures, SHA-256 of every part, inflate. */
function nodeVerifyBundle(bundle: Uint8Array, publicKeys: Map<string, Uint8Array>): void {
  const { envelopeBytes, body } = readContainer(bundle, DEFAULT_BUNDLE_LIMITS);
  const envelope = JSON.parse(fromUtf8(envelopeBytes)) as SignedEnvelope;
  const payload = fromBase64(envelope.payload);
  const message = preAuthEncoding(envelope.payloadType, payload);
  let valid = 0;
  for (const { keyid, sig } of envelope.signatures) {
    const raw = publicKeys.get(keyid);
    if (!raw) continue;
    const key = createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]),
      format: 'der',
      type: 'spki',
    });
    if (nodeVerify(null, message, key, fromBase64(sig))) valid++;
  }
  if (valid < 2) throw new Error('node: threshold not met');
  const manifest = parseManifest(JSON.parse(fromUtf8(payload)));
  const stored = splitParts(manifest, body);
  manifest.parts.forEach((entry, i) => {
    const bytes = stored[i]!;
    if (createHash('sha256').update(bytes).digest('hex') !== entry.sha256) throw new Error('hash');
    const data =
      entry.compression === 'none'
        ? bytes
        : inflateRawSync(bytes, { maxOutputLength: entry.uncompressedLength });
    if (createHash('sha256').update(data).digest('hex') !== entry.uncompressedSha256) {
      throw new Error('uncompressed hash');
    }
  });
}

async function main(): Promise<void> {
  const trust = await testTrust();
  const signers = trust.bundleKeys.slice(0, 2);
  const publicKeys = new Map(trust.bundleKeys.map((k) => [k.keyId, k.publicKey]));
  const options: VerifyOptions = {
    root: trust.root,
    nowMs: NOW_MS,
    installedRelease: 0,
    hardwareClass: 'rpi4',
  };
  const figures: Record<string, unknown> = {};
  for (const [label, targetBytes, runs] of [
    ['1MB', 1 * MB, 30],
    ['20MB', 20 * MB, 7],
  ] as const) {
    process.stderr.write(`building a ${label} bundle...\n`);
    // int8 weights deflate to ~84%: size the raw weights so the bundle lands near the target.
    const weights = int8Weights(Math.round(targetBytes / 0.84));
    const bundle = await packBundle({
      manifest: {
        name: 'bench',
        version: '1.0.0',
        release: 1,
        hardware: ['rpi4'],
        minAgentVersion: '0.1.0',
        issuedAt: '2026-11-26T00:00:00Z',
        expires: '2030-01-01T00:00:00Z',
        lineage: { producer: { kind: 'manual' } },
      },
      parts: [
        { name: 'model.onnx', bytes: weights, compression: 'deflate-raw' },
        { name: 'golden.json', bytes: new TextEncoder().encode('{"cases":[]}') },
      ],
      signers,
    });
    const mb = bundle.length / MB;
    process.stderr.write(`  ${label}: ${bundle.length} bytes; timing ${runs} runs each...\n`);
    const fleetMs = await median(runs, () => verifyBundle(bundle, options));
    const portableMs = await median(runs, () =>
      verifyBundle(bundle, { ...options, inflate: portableInflate }),
    );
    const nodeInflateMs = await median(runs, () =>
      verifyBundle(bundle, { ...options, inflate: nodeInflate }),
    );
    const nodeMs = await median(runs, () => Promise.resolve(nodeVerifyBundle(bundle, publicKeys)));
    const row = {
      bundleBytes: bundle.length,
      fleetMBps: +(mb / (fleetMs / 1000)).toFixed(1),
      fleetPortableInflateMBps: +(mb / (portableMs / 1000)).toFixed(1),
      fleetNodeInflateMBps: +(mb / (nodeInflateMs / 1000)).toFixed(1),
      nodeBuiltinMBps: +(mb / (nodeMs / 1000)).toFixed(1),
      slowdownVsNode: +(fleetMs / nodeMs).toFixed(2),
      slowdownVsNodeWithNodeInflate: +(nodeInflateMs / nodeMs).toFixed(2),
    };
    process.stderr.write(
      `  fleet ${row.fleetMBps} MB/s (portable inflate ${row.fleetPortableInflateMBps}, node inflate ${row.fleetNodeInflateMBps}), node built-ins ${row.nodeBuiltinMBps} MB/s: ${row.slowdownVsNode}x (${row.slowdownVsNodeWithNodeInflate}x with node inflate)\n`,
    );
    figures[label] = row;
  }
  const rows = Object.values(figures) as {
    slowdownVsNode: number;
    slowdownVsNodeWithNodeInflate: number;
  }[];
  console.log(
    JSON.stringify({
      bench: 'protocol.verify-throughput',
      node: process.version,
      ...figures,
      targetSlowdown: 3,
      // The default path (web streams, as in a browser) and the path Node
      // consumers take (`inflate: nodeInflate` from @fleet/protocol/node).
      targetMet: rows.every((r) => r.slowdownVsNode <= 3),
      targetMetOnNode: rows.every((r) => r.slowdownVsNodeWithNodeInflate <= 3),
    }),
  );
}

await main();
