/**
 * The device registry applies state messages in batches: messages arriving
 * together go to the store in one `applyStates` call, those arriving while a
 * write is in flight in the next one, and a batch the store refuses is
 * retried message by message, so one message the database refuses fails
 * alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateKeyPair, keyIdOf, signDeviceMessage, toBase64, utf8 } from '@fleet/protocol';
import type { DeviceRow, DeviceStore, StateUpdate } from '../adapters/db/device-store.ts';
import { createDeviceRegistry } from './device-registry.ts';

async function device(id: string) {
  const pair = generateKeyPair();
  const keyId = await keyIdOf(pair.publicKey);
  const row = { id, publicKey: toBase64(pair.publicKey), keyId, revokedAt: null } as DeviceRow;
  const signer = { keyId, secretKey: pair.secretKey };
  const state = (second: number, agentVersion = '0.1.0') =>
    utf8(
      JSON.stringify(
        signDeviceMessage({
          deviceId: id,
          signer,
          message: {
            type: 'state',
            id: `state-${second}-${agentVersion.length}`,
            schemaVersion: 1,
            ts: new Date(Date.UTC(2026, 10, 26, 12, 0, second)).toISOString(),
            deviceId: id,
            online: true,
            agentVersion,
            hardware: 'rpi4',
            model: null,
            update: { state: 'idle' },
          },
        }),
      ),
    );
  return { row, state };
}

/** A store that keeps rows in memory and records each applyStates batch. */
function fakeStore(rows: DeviceRow[], refuse: (u: StateUpdate) => boolean = () => false) {
  const batches: string[][] = [];
  const singles: string[] = [];
  const byId = new Map(rows.map((r) => [r.id, r]));
  const store = {
    getKeys: (ids: readonly string[]) =>
      Promise.resolve(ids.flatMap((id) => (byId.has(id) ? [byId.get(id)!] : []))),
    applyStates: async (updates: readonly StateUpdate[]) => {
      batches.push(updates.map((u) => `${u.id}@${u.state.ts.slice(17, 19)}`));
      // A database round trip; the first is long, so that everything sent
      // after it (each verified at its own pace) is waiting when it ends.
      await new Promise((resolve) => setTimeout(resolve, batches.length === 1 ? 200 : 20));
      if (updates.some(refuse)) throw new Error('value too long for type character varying');
      return updates.map(() => true);
    },
    applyState: (id: string, state: StateUpdate['state']) => {
      singles.push(id);
      return refuse({ id, state, now: new Date() })
        ? Promise.reject(new Error('value too long for type character varying'))
        : Promise.resolve(true);
    },
  } as unknown as DeviceStore;
  return { store, batches, singles };
}

async function firstWriteInFlight(batches: string[][]) {
  const deadline = Date.now() + 5_000;
  while (batches.length === 0) {
    assert.ok(Date.now() < deadline, 'no applyStates call within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

describe('device state batching', () => {
  it('applies the messages that arrive while a write is in flight together, in the next write', async () => {
    const devices = await Promise.all(Array.from({ length: 20 }, (_, i) => device(`d-${i}`)));
    const { store, batches } = fakeStore(devices.map((d) => d.row));
    const registry = createDeviceRegistry({ store, nowMs: () => 1_000_000 });
    for (const d of devices) await registry.lookup(d.row.id); // keys cached
    const first = registry.onStateMessage('d-0', devices[0]!.state(1));
    await firstWriteInFlight(batches);
    const rest = [
      ...devices.slice(1).map((d) => registry.onStateMessage(d.row.id, d.state(1))),
      ...devices.map((d) => registry.onStateMessage(d.row.id, d.state(2))),
    ];
    assert.deepEqual(await Promise.all([first, ...rest]), Array(40).fill(true));
    assert.deepEqual(batches[0], ['d-0@01']);
    // Verification finishes at its own pace, so the 39 may straddle a write
    // or two; one by one they would be 39 writes.
    assert.ok(batches.length <= 5, `${batches.length} writes for 40 messages`);
    assert.ok(batches[1]!.length >= 20, `the second write holds ${batches[1]!.length}`);
    const expected = [
      ...devices.slice(1).map((d) => `${d.row.id}@01`),
      ...devices.map((d) => `${d.row.id}@02`),
    ];
    assert.deepEqual(batches.slice(1).flat().sort(), expected.sort(), 'each message once');
  });

  it('retries a refused batch one by one: only the refused message fails', async () => {
    const devices = await Promise.all(['ok-1', 'bad', 'ok-2'].map((id) => device(id)));
    const { store, batches, singles } = fakeStore(
      devices.map((d) => d.row),
      (u) => u.state.agentVersion.length > 20,
    );
    const registry = createDeviceRegistry({ store, nowMs: () => 1_000_000 });
    for (const d of devices) await registry.lookup(d.row.id);
    const warm = registry.onStateMessage('ok-1', devices[0]!.state(0));
    await firstWriteInFlight(batches);
    const results = await Promise.allSettled(
      devices.map((d) =>
        registry.onStateMessage(
          d.row.id,
          d.state(1, d.row.id === 'bad' ? `1.0.0-${'x'.repeat(30)}` : '0.1.0'),
        ),
      ),
    );
    assert.equal(await warm, true);
    assert.equal(batches.length, 2, 'the first write, then one batch of three, refused');
    assert.equal(batches[1]!.length, 3);
    assert.deepEqual([...singles].sort(), ['bad', 'ok-1', 'ok-2']);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.match(String((results[1] as PromiseRejectedResult).reason), /too long/);
  });
});
