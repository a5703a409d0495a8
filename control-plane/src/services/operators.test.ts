/**
 * Operator tokens across replicas: a token revoked on one replica is refused
 * there at once, and on another replica once its lookup cache expires
 * (TOKEN_CACHE_TTL_MS), never later.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openDatabase, type OpenDatabase } from '../adapters/db/database.ts';
import { createOperatorTokenStore } from '../adapters/db/operator-token-store.ts';
import { createOperators, TOKEN_CACHE_TTL_MS } from './operators.ts';

let database: OpenDatabase;
before(async () => {
  database = await openDatabase();
});
after(() => database.close());

describe('operator token cache', () => {
  it('refuses a revoked token at once locally and within the TTL elsewhere', async () => {
    const clock = { nowMs: Date.parse('2026-11-26T12:00:00Z') };
    const store = createOperatorTokenStore(database.db);
    const replicaA = createOperators({ store, nowMs: () => clock.nowMs });
    const replicaB = createOperators({ store, nowMs: () => clock.nowMs });
    const { row, secret } = await replicaA.create({ name: 'ci', role: 'operator' }, 'system');
    assert.deepEqual(await replicaA.authenticate(secret), { tokenId: row.id, role: 'operator' });
    assert.deepEqual(await replicaB.authenticate(secret), { tokenId: row.id, role: 'operator' });
    await replicaA.revoke(row.id, 'system');
    assert.equal(await replicaA.authenticate(secret), null);
    clock.nowMs += TOKEN_CACHE_TTL_MS - 1;
    assert.notEqual(await replicaB.authenticate(secret), null, 'still cached on B');
    clock.nowMs += 1;
    assert.equal(await replicaB.authenticate(secret), null);
  });

  it('refuses strings not shaped like a token without a lookup', async () => {
    const operators = createOperators({
      store: {
        ...createOperatorTokenStore(database.db),
        findActive: () => Promise.reject(new Error('no lookup expected')),
      },
      nowMs: () => 0,
    });
    assert.equal(await operators.authenticate('Bearer nonsense'), null);
    assert.equal(await operators.authenticate(`fleet_${'!'.repeat(43)}`), null);
  });
});
