// A fingerprint of a shard's replicated state, to check that replicas at the same applied
// index agree (ARCHITECTURE.md, invariant 2). It covers what the log alone decides: each
// entry's key, value, version, expiry and creation time, the eviction and expiration counts,
// and the client sessions that deduplicate retries. It leaves out everything replica-local:
// lastAccessed, hit/miss counters, the policy's order, and where entries and values sit in
// memory (a store restored from a snapshot lays them out differently), by hashing the
// entries in key order. O(keys log keys): for stats and tests, computed only when asked.
import { createHash } from 'node:crypto';
import type { ClientSessions } from './client-sessions.ts';
import type { EntryTable } from './entry-table.ts';

export interface ReplicatedState {
  readonly table: EntryTable;
  readonly evictions: number;
  readonly expirations: number;
  readonly sessions: ClientSessions;
}

/** Hex SHA-256 over the replicated state; equal states give equal digests, whatever their layout. */
export function stateDigest(state: ReplicatedState): string {
  const { table } = state;
  const hash = createHash('sha256');
  const keys: string[] = [];
  for (const slot of table.handles()) keys.push(table.key(slot));
  keys.sort();
  // The count, and lengths before the key and value bytes, frame the input: no two states
  // hash the same bytes.
  const header = Buffer.alloc(5 * 8);
  header.writeDoubleBE(keys.length, 0);
  hash.update(header.subarray(0, 8));
  for (const key of keys) {
    const slot = table.slotOf(key);
    const value = table.value(slot);
    header.writeDoubleBE(Buffer.byteLength(key, 'utf8'), 0);
    header.writeDoubleBE(value.byteLength, 8);
    header.writeDoubleBE(table.version(slot), 16);
    header.writeDoubleBE(table.expiresAt(slot), 24);
    header.writeDoubleBE(table.createdAt(slot), 32);
    hash.update(header);
    hash.update(key, 'utf8');
    hash.update(value);
  }
  const { evictions, expirations, sessions } = state;
  hash.update(JSON.stringify({ evictions, expirations, sessions: sessions.export() }));
  return hash.digest('hex');
}
