/**
 * Retained messages looked up by topic, for the embedded broker.
 *
 * aedes answers every SUBSCRIBE by streaming the retained messages its
 * filters match (`createRetainedStreamCombi`), and aedes-persistence's memory
 * store (11.0) finds them by testing every retained message against each
 * filter: a scan of all of them per SUBSCRIBE. Every device keeps one
 * retained message (its `state`), and every device subscribes (its `cmd`
 * topic at connect, the bundle topic per update), so a fleet of N devices
 * costs N x N topic matches: 16 s of the control plane's CPU in a rollout
 * to 3,000 simulated agents (CPU profile), ten times that at 10,000.
 *
 * Devices subscribe to exact topics (no wildcard: the access rules allow
 * them only their own topics and named bundle topics). So this keeps its own
 * index of the retained messages by topic, fed by the same `storeRetained`
 * calls, and answers a SUBSCRIBE whose filters have no wildcard from it;
 * any filter with a wildcard (the control plane's own `+` subscriptions,
 * once each) goes to the store's scan as before. Written here, not taken
 * from a library: aedes-persistence has no index, and aedes takes no
 * persistence but one built on aedes-persistence, so this wraps the instance
 * aedes created (as `storeOnlyAllowedSubscriptions` does).
 */
import { Readable } from 'node:stream';
import type { Aedes } from 'aedes';

interface RetainedPacket {
  topic: string;
  payload: Uint8Array | string;
}

interface RetainedStore {
  storeRetained(packet: RetainedPacket, callback?: (error: Error | null) => void): unknown;
  createRetainedStreamCombi(patterns: string[]): Readable;
}

export interface RetainedIndex {
  /** Retained messages held (for tests and metrics). */
  size(): number;
  /** SUBSCRIBEs answered from the index, and those left to the store's scan. */
  stats(): { indexed: number; scanned: number };
}

const hasWildcard = (filter: string) => filter.includes('+') || filter.includes('#');

export function indexRetainedMessages(broker: Aedes): RetainedIndex {
  const store = (broker as unknown as { persistence?: Partial<RetainedStore> }).persistence;
  const storeRetained = store?.storeRetained?.bind(store);
  const scan = store?.createRetainedStreamCombi?.bind(store);
  if (!store || !storeRetained || !scan) {
    throw new Error('aedes persistence has no storeRetained / createRetainedStreamCombi to index');
  }
  const byTopic = new Map<string, RetainedPacket>();
  const counts = { indexed: 0, scanned: 0 };
  store.storeRetained = (packet, callback) => {
    // The store's own rule: an empty payload clears the topic's retained message.
    if (packet.payload.length === 0) byTopic.delete(packet.topic);
    else byTopic.set(packet.topic, { ...packet });
    return storeRetained(packet, callback);
  };
  store.createRetainedStreamCombi = (patterns) => {
    if (patterns.some(hasWildcard)) {
      counts.scanned += 1;
      return scan(patterns);
    }
    counts.indexed += 1;
    const found: RetainedPacket[] = [];
    for (const topic of patterns) {
      const packet = byTopic.get(topic);
      if (packet) found.push(packet);
    }
    return Readable.from(found);
  };
  return { size: () => byTopic.size, stats: () => ({ ...counts }) };
}
