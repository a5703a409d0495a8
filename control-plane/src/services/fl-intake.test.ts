/**
 * Update intake refusals, each through the MQTT path with signed messages:
 * every case is counted in fleet_fl_updates_total under its reason and
 * accepts nothing (no accepted row, no blob, the round still collecting).
 */
import assert from 'node:assert/strict';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { encodeTensorSet, flPartCount, type FlUpdatePartMessage } from '@fleet/protocol';
import {
  startFlFleet,
  tensorsOf,
  updateMessages,
  type FlDevice,
  type FlFleet,
} from '../__fixtures__/fl-fleet.ts';

let f: FlFleet;
const devices: FlDevice[] = [];
let outsider: FlDevice;

before(async () => {
  f = await startFlFleet({ fl: { maxBufferedUpdateBytes: 400_000 } });
  for (let i = 0; i < 3; i++)
    devices.push(await f.device(`in-dev-${i}`, { tags: { site: 'lab' } }));
  outsider = await f.device('in-outsider', { tags: { site: 'elsewhere' } });
});
after(() => f.close());

async function counted(result: string): Promise<number> {
  const metric = await f.cp.metrics.flUpdates.get();
  return metric.values.find((v) => v.labels['result'] === result)?.value ?? 0;
}

async function fresh(over: Record<string, unknown> = {}) {
  const { round } = await f.cp.fl.startRound({
    model: { name: 'mnist-2nn' },
    config: {
      fraction: 1,
      minClients: 2,
      clipNorm: 1,
      encoding: 'float32',
      deadlineMs: 600_000,
      ...over,
    },
    target: { tags: { site: 'lab' } },
    evalSet: 'holdout',
    trigger: { kind: 'operator', detail: null },
    actor: 'token:test',
  });
  return round.id;
}

/** ~157 KB float32 (values that barely compress): 3 parts. */
const noisy = () => {
  let x = 0x9e3779b9;
  return tensorsOf(() => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x % 1000) / 1e7;
  });
};
const small = () => tensorsOf((t, i) => (t === 1 && i < 3 ? 0.1 : 0));

/** Delivers a header and its parts; `refused` names the result that must go up by one and nothing accepted. */
async function expectRefused(
  roundId: string,
  result: string,
  deliver: () => Promise<void>,
): Promise<void> {
  const before = await counted(result);
  const accepted = await counted('accepted');
  const stored = (await f.cp.fl.get(roundId)).updates.filter((u) => u.status === 'accepted').length;
  await deliver();
  assert.equal(await counted(result), before + 1, `${result} counted`);
  assert.equal(await counted('accepted'), accepted, 'nothing accepted');
  const after = await f.cp.fl.get(roundId);
  assert.equal(after.updates.filter((u) => u.status === 'accepted').length, stored);
  assert.equal(after.round.status, 'collecting');
}

async function sendAll(
  d: FlDevice,
  messages: ReturnType<typeof updateMessages>,
  parts?: FlUpdatePartMessage[],
) {
  await f.deliver(d, messages.header);
  for (const p of parts ?? messages.parts) await f.deliver(d, p);
}

const msg = (
  d: FlDevice,
  roundId: string,
  extra: Parameters<typeof updateMessages>[0] extends infer T ? Partial<T> : never = {},
) => updateMessages({ deviceId: d.id, roundId, model: f.model, tensors: small(), ...extra });

/** Replaces the float32 value 1234.5 in a tensor set's body by NaN, keeping the format valid otherwise. */
function withNaN(): Uint8Array {
  const bytes = encodeTensorSet(
    tensorsOf((t, i) => (t === 1 && i === 0 ? 1234.5 : 0)),
    { encoding: 'float32' },
  );
  const body = inflateRawSync(bytes.subarray(12));
  const marker = Buffer.alloc(4);
  marker.writeFloatLE(1234.5);
  const at = body.indexOf(marker);
  body.writeFloatLE(Number.NaN, at);
  return new Uint8Array(Buffer.concat([bytes.subarray(0, 12), deflateRawSync(body)]));
}

describe('fl update intake refusals', () => {
  it('refuses headers by the round core order before buffering anything', async () => {
    const id = await fresh();
    await expectRefused(id, 'wrong-round', () =>
      sendAll(devices[0]!, msg(devices[0]!, 'no-such-round-0001')),
    );
    await expectRefused(id, 'not-selected', () => sendAll(outsider, msg(outsider, id)));
    await expectRefused(id, 'wrong-base', () =>
      sendAll(
        devices[0]!,
        msg(devices[0]!, id, { model: { ...f.model, bundleId: 'd'.repeat(64) } }),
      ),
    );
    // devices[0] has answered (wrong base): a second update is a duplicate, its replay replayed.
    const again = msg(devices[0]!, id);
    await expectRefused(id, 'duplicate', () => sendAll(devices[0]!, again));
    await expectRefused(id, 'replayed', () => sendAll(devices[0]!, again));
  });

  it('refuses a replayed update id from another round, and a part without its header', async () => {
    const id = await fresh();
    const ok = msg(devices[1]!, id);
    await sendAll(devices[1]!, ok);
    const other = await fresh();
    await expectRefused(other, 'replayed', () =>
      sendAll(devices[1]!, { ...ok, header: { ...ok.header, roundId: other } }),
    );
    const orphan = msg(devices[2]!, other);
    await expectRefused(other, 'unknown-header', () => f.deliver(devices[2]!, orphan.parts[0]!));
  });

  it('refuses bad parts and bad bytes as malformed', async () => {
    const cases: Array<[string, (d: FlDevice, id: string) => Promise<void>]> = [
      [
        'part index out of range',
        async (d, id) => {
          const m = msg(d, id);
          await sendAll(d, m, [
            { ...m.parts[0]!, count: m.parts[0]!.count + 1, index: m.parts[0]!.count },
          ]);
        },
      ],
      [
        'part for another round',
        async (d, id) => {
          const m = msg(d, id);
          await sendAll(d, m, [{ ...m.parts[0]!, roundId: 'another-round-01' }]);
        },
      ],
      [
        'sha mismatch',
        async (d, id) => {
          const m = msg(d, id);
          await sendAll(d, {
            ...m,
            header: { ...m.header, update: { ...m.header.update!, sha256: '0'.repeat(64) } },
          });
        },
      ],
      [
        'size mismatch',
        async (d, id) => {
          const m = msg(d, id);
          const sizeBytes = m.header.update!.sizeBytes + 1;
          await sendAll(d, {
            ...m,
            header: { ...m.header, update: { ...m.header.update!, sizeBytes } },
          });
        },
      ],
      [
        'a size no update of this model reaches (it would hold the buffer budget)',
        async (d, id) => {
          const m = msg(d, id);
          const sizeBytes = 20 * 1024 * 1024;
          await f.deliver(d, {
            ...m.header,
            update: { ...m.header.update!, sizeBytes, partCount: flPartCount(sizeBytes) },
          });
        },
      ],
      [
        'not a tensor set',
        async (d, id) => sendAll(d, msg(d, id, { bytes: new Uint8Array(100).fill(7) })),
      ],
      [
        'wrong tensor names',
        async (d, id) =>
          sendAll(
            d,
            msg(d, id, {
              tensors: small().map((t, i) => (i === 0 ? { ...t, name: 'dense_9/kernel' } : t)),
            }),
          ),
      ],
      [
        'wrong dims',
        async (d, id) =>
          sendAll(
            d,
            msg(d, id, {
              tensors: small().map((t, i) => (i === 1 ? { ...t, dims: [10, 10] } : t)),
            }),
          ),
      ],
    ];
    for (const [what, run] of cases) {
      const id = await fresh();
      await expectRefused(id, 'malformed', () => run(devices[0]!, id)).catch((error: unknown) => {
        throw new Error(`${what}: ${String(error)}`);
      });
    }
  });

  it('refuses NaN and over-clip updates', async () => {
    const id = await fresh();
    await expectRefused(id, 'non-finite', () =>
      sendAll(devices[0]!, msg(devices[0]!, id, { bytes: withNaN() })),
    );
    await expectRefused(id, 'over-clip', () =>
      sendAll(
        devices[1]!,
        msg(devices[1]!, id, { tensors: tensorsOf((t, i) => (t === 1 && i === 0 ? 5 : 0)) }),
      ),
    );
  });

  it('drops a header after the deadline and a partial upload still open at it as late', async () => {
    const id = await fresh({ deadlineMs: 60_000 });
    const partial = msg(devices[0]!, id, { tensors: noisy() });
    assert.ok(partial.parts.length > 1);
    await expectRefused(id, 'late', async () => {
      await sendAll(devices[0]!, partial, partial.parts.slice(0, 1));
      f.clock.nowMs += 60_000;
      await f.cp.fl.tick().catch(() => undefined);
    }).catch((error: unknown) => {
      // The tick closes collection (too few answers): the round is failed, not collecting.
      if (!String(error).includes('collecting')) throw error;
    });
    assert.equal((await f.cp.fl.get(id)).round.snapshot.rejections.late, 1);
    const before = await counted('late');
    await sendAll(devices[1]!, msg(devices[1]!, id));
    assert.equal(await counted('late'), before + 1);
    assert.equal((await f.cp.fl.get(id)).round.snapshot.rejections.late, 2);
  });

  it('refuses a header beyond the buffer budget', async () => {
    const id = await fresh();
    const big = msg(devices[0]!, id, { tensors: noisy() }); // ~157 KB each: two fit in 400 KB, three do not
    const big2 = msg(devices[1]!, id, { tensors: noisy() });
    await f.deliver(devices[0]!, big.header);
    await f.deliver(devices[1]!, big2.header);
    await expectRefused(id, 'buffer-full', () =>
      f.deliver(devices[2]!, msg(devices[2]!, id, { tensors: noisy() }).header),
    );
  });
});
