/**
 * The device registry's key cache: each device message is verified against
 * the device's key, so lookups are served from memory, and those that miss
 * it are read together (a burst, lookups made while a read is in flight,
 * lookups within a millisecond of each other); a revocation made
 * here is seen at once, one made elsewhere (another replica) within
 * KEY_CACHE_TTL_MS, and an unknown device is never cached as unknown.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateKeyPair, keyIdOf, toBase64 } from '@fleet/protocol';
import type { DeviceRow, DeviceStore } from '../adapters/db/device-store.ts';
import { createDeviceRegistry, KEY_CACHE_TTL_MS } from './device-registry.ts';

async function deviceRow(id: string): Promise<DeviceRow> {
  const { publicKey } = generateKeyPair();
  return {
    id,
    publicKey: toBase64(publicKey),
    keyId: await keyIdOf(publicKey),
    revokedAt: null,
  } as DeviceRow; // only the fields lookup reads
}

/**
 * A device store holding rows in memory and counting reads; other methods are
 * not used here. A read takes `readMs` (a database round trip), or no time at
 * all with 0, as PGlite's reads on this thread nearly do.
 */
function fakeStore(rows: Map<string, DeviceRow>, readMs = 5) {
  const reads: string[] = [];
  const batches: number[] = [];
  const store = {
    getKeys: async (ids: readonly string[]) => {
      reads.push(...ids);
      batches.push(ids.length);
      if (readMs > 0) await new Promise((resolve) => setTimeout(resolve, readMs));
      return ids.flatMap((id) => (rows.has(id) ? [rows.get(id)!] : []));
    },
    revoke: (id: string, _actor: unknown, now: Date) => {
      const row = { ...rows.get(id)!, revokedAt: now };
      rows.set(id, row);
      return Promise.resolve(row);
    },
  } as unknown as DeviceStore;
  return { store, reads, batches };
}

describe('device key lookups', () => {
  it('reads the keys of devices asked for together in one query; unknown ones are null', async () => {
    const rows = new Map<string, DeviceRow>();
    for (let i = 0; i < 100; i++) rows.set(`d-${i}`, await deviceRow(`d-${i}`));
    const { store, batches } = fakeStore(rows);
    const registry = createDeviceRegistry({ store, nowMs: () => 1_000_000 });
    const ids = [...rows.keys(), 'nobody'];
    const keys = await Promise.all(ids.map((id) => registry.lookup(id)));
    assert.deepEqual(batches, [101], 'one read for the burst');
    for (const [i, id] of ids.entries()) {
      if (id === 'nobody') assert.equal(keys[i], null);
      else assert.equal(toBase64(keys[i]!.publicKey), rows.get(id)!.publicKey, id);
    }
  });

  it('asks for ids that arrive while a read is in flight in the next read, all together', async () => {
    const rows = new Map<string, DeviceRow>();
    for (let i = 0; i < 30; i++) rows.set(`d-${i}`, await deviceRow(`d-${i}`));
    const { store, batches } = fakeStore(rows);
    const registry = createDeviceRegistry({ store, nowMs: () => 1_000_000 });
    const first = registry.lookup('d-0');
    while (batches.length === 0) await new Promise((resolve) => setImmediate(resolve));
    // d-0's read is in flight (5 ms): the others wait for it, then go together.
    const rest = [...rows.keys()].slice(1).map((id) => registry.lookup(id));
    const all = await Promise.all([first, ...rest]);
    assert.ok(all.every((key) => key !== null));
    assert.deepEqual(batches, [1, 29]);
  });

  it('puts lookups made in separate turns of the event loop, with no read in flight, in one read', async () => {
    const rows = new Map<string, DeviceRow>();
    for (let i = 0; i < 20; i++) rows.set(`d-${i}`, await deviceRow(`d-${i}`));
    const { store, batches } = fakeStore(rows, 0);
    const registry = createDeviceRegistry({ store, nowMs: () => 1_000_000 });
    // CONNECTs read from different sockets: each lookup in a turn of its own.
    // The turns take microseconds; the reads wait 1 ms for company (a read
    // for each turn would be 20; a slow machine may split them a few times).
    const lookups = [];
    for (const id of rows.keys()) {
      lookups.push(registry.lookup(id));
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.ok((await Promise.all(lookups)).every((key) => key !== null));
    assert.equal(
      batches.reduce((a, b) => a + b, 0),
      20,
    );
    assert.ok(batches.length <= 5, `${batches.length} reads for 20 lookups: ${batches.join(', ')}`);
  });

  it('reads a device once, then answers from memory until the cache time has passed', async () => {
    let now = 1_000_000;
    const rows = new Map([['d-1', await deviceRow('d-1')]]);
    const { store, reads } = fakeStore(rows);
    const registry = createDeviceRegistry({ store, nowMs: () => now });
    const first = await registry.lookup('d-1');
    assert.equal(first?.revoked, false);
    for (let i = 0; i < 10; i++) assert.deepEqual(await registry.lookup('d-1'), first);
    assert.deepEqual(reads, ['d-1']);
    now += KEY_CACHE_TTL_MS;
    await registry.lookup('d-1');
    assert.deepEqual(reads, ['d-1', 'd-1']);
  });

  it('sees a revocation made through it at once, and one made elsewhere within the cache time', async () => {
    let now = 1_000_000;
    const rows = new Map([
      ['d-1', await deviceRow('d-1')],
      ['d-2', await deviceRow('d-2')],
    ]);
    const { store } = fakeStore(rows);
    const registry = createDeviceRegistry({ store, nowMs: () => now });
    const disconnected: string[] = [];
    const withDisconnect = createDeviceRegistry({
      store,
      nowMs: () => now,
      disconnect: (id) => disconnected.push(id),
    });
    assert.equal((await withDisconnect.lookup('d-1'))?.revoked, false);
    await withDisconnect.revoke('d-1', 'admin', 'stolen');
    assert.equal((await withDisconnect.lookup('d-1'))?.revoked, true, 'at once, here');
    assert.deepEqual(disconnected, ['d-1']);

    // Revoked through another registry (another replica): this one learns it by expiry.
    assert.equal((await registry.lookup('d-2'))?.revoked, false);
    await withDisconnect.revoke('d-2', 'admin', 'stolen');
    now += KEY_CACHE_TTL_MS - 1;
    assert.equal((await registry.lookup('d-2'))?.revoked, false, 'still within the cache time');
    now += 1;
    assert.equal((await registry.lookup('d-2'))?.revoked, true);
  });

  it('does not remember an unknown device: it is found as soon as it enrols', async () => {
    const rows = new Map<string, DeviceRow>();
    const { store, reads } = fakeStore(rows);
    const registry = createDeviceRegistry({ store, nowMs: () => 0 });
    assert.equal(await registry.lookup('d-new'), null);
    rows.set('d-new', await deviceRow('d-new'));
    assert.notEqual(await registry.lookup('d-new'), null);
    assert.deepEqual(reads, ['d-new', 'd-new']);
  });
});
