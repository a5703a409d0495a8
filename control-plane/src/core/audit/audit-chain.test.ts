import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sealAuditEntry, verifyAuditChain, type AuditEntry } from './audit-chain.ts';

async function chain(n: number): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      await sealAuditEntry(out.at(-1) ?? null, {
        at: `2026-11-26T12:00:0${i}Z`,
        actor: 'token:admin-1',
        action: 'device.tagged',
        subject: `dev-${i}`,
        before: { tags: {} },
        after: { tags: { site: `s${i}` } },
      }),
    );
  }
  return out;
}

describe('audit hash chain', () => {
  it('a sealed chain verifies and reports its head', async () => {
    const entries = await chain(5);
    const verdict = await verifyAuditChain(entries);
    assert.deepEqual(verdict, { ok: true, count: 5, head: { seq: 5, hash: entries[4]!.hash } });
    assert.deepEqual(await verifyAuditChain([]), { ok: true, count: 0, head: null });
  });

  it('detects an edited row, even a change deep inside before/after', async () => {
    const entries = await chain(5);
    entries[2] = { ...entries[2]!, after: { tags: { site: 'forged' } } };
    assert.deepEqual(await verifyAuditChain(entries), { ok: false, seq: 3, problem: 'edited' });
  });

  it('detects a deleted row in the middle', async () => {
    const entries = await chain(5);
    entries.splice(1, 1);
    assert.deepEqual(await verifyAuditChain(entries), {
      ok: false,
      seq: 3,
      problem: 'missing-or-reordered',
    });
  });

  it('detects a row rewritten with its own hash recomputed (the link to it breaks)', async () => {
    const entries = await chain(4);
    const forged = await sealAuditEntry(
      { seq: 1, hash: entries[0]!.hash },
      { ...entries[1]!, actor: 'token:intruder' },
    );
    entries[1] = forged;
    assert.deepEqual(await verifyAuditChain(entries), {
      ok: false,
      seq: 3,
      problem: 'broken-link',
    });
  });

  it('detects rows cut off the end when the head is known', async () => {
    const entries = await chain(5);
    const head = { seq: 5, hash: entries[4]!.hash };
    assert.deepEqual(await verifyAuditChain(entries.slice(0, 3), head), {
      ok: false,
      seq: 4,
      problem: 'truncated',
    });
    assert.equal((await verifyAuditChain(entries, head)).ok, true);
  });
});
