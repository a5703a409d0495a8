/**
 * The audit log's hash chain, as a pure core: every state change becomes an
 * entry whose hash covers its fields and the previous entry's hash, so editing,
 * deleting, inserting or reordering any row breaks the chain from that row on.
 * The database adapter stores entries; `fleet audit verify` replays them here.
 *
 * A chain alone cannot show that its newest rows were cut off: pass the head
 * recorded elsewhere (`expectedHead`) to catch truncation.
 */
import { canonicalJson, sha256Hex } from '@fleet/protocol';

/** The hash the first entry links to. */
export const GENESIS_HASH = '0'.repeat(64);

export interface AuditFields {
  /** ISO 8601 time of the change. */
  at: string;
  /** Who made it: an operator token id, a device id, or `system`. */
  actor: string;
  /** What happened, e.g. `device.enrolled`, `token.created`. */
  action: string;
  /** What it happened to, e.g. a device or model id. */
  subject: string;
  /** JSON state before and after the change (null when there is none). */
  before: unknown;
  after: unknown;
}

export interface AuditEntry extends AuditFields {
  /** 1, 2, 3, ... with no gaps. */
  seq: number;
  prevHash: string;
  hash: string;
}

export interface ChainHead {
  seq: number;
  hash: string;
}

async function hashOf(entry: Omit<AuditEntry, 'hash'>): Promise<string> {
  const { seq, at, actor, action, subject, before, after, prevHash } = entry;
  return sha256Hex(canonicalJson({ seq, at, actor, action, subject, before, after, prevHash }));
}

/** The next entry after `head` (null for an empty log). */
export async function sealAuditEntry(
  head: ChainHead | null,
  fields: AuditFields,
): Promise<AuditEntry> {
  const unsealed = { ...fields, seq: (head?.seq ?? 0) + 1, prevHash: head?.hash ?? GENESIS_HASH };
  return { ...unsealed, hash: await hashOf(unsealed) };
}

export type AuditVerdict =
  | { ok: true; count: number; head: ChainHead | null }
  | {
      ok: false;
      seq: number;
      problem: 'edited' | 'missing-or-reordered' | 'broken-link' | 'truncated';
    };

/**
 * Replays entries in `seq` order and names the first row where the chain
 * breaks: `edited` (its hash does not match its fields), `missing-or-reordered`
 * (a gap or step back in seq), `broken-link` (prevHash is not the previous
 * row's hash), `truncated` (the chain ends before `expectedHead`).
 */
export async function verifyAuditChain(
  entries: Iterable<AuditEntry> | AsyncIterable<AuditEntry>,
  expectedHead?: ChainHead,
): Promise<AuditVerdict> {
  let previous: ChainHead = { seq: 0, hash: GENESIS_HASH };
  let count = 0;
  for await (const entry of entries) {
    if (entry.seq !== previous.seq + 1)
      return { ok: false, seq: entry.seq, problem: 'missing-or-reordered' };
    const { hash, ...unsealed } = entry;
    if ((await hashOf(unsealed)) !== hash) return { ok: false, seq: entry.seq, problem: 'edited' };
    if (entry.prevHash !== previous.hash)
      return { ok: false, seq: entry.seq, problem: 'broken-link' };
    previous = { seq: entry.seq, hash };
    count++;
  }
  if (
    expectedHead &&
    (previous.seq < expectedHead.seq ||
      (previous.seq === expectedHead.seq && previous.hash !== expectedHead.hash))
  ) {
    return { ok: false, seq: previous.seq + 1, problem: 'truncated' };
  }
  return { ok: true, count, head: count === 0 ? null : previous };
}
