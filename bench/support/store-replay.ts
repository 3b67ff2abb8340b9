// Drives the real cache store the way a cache-aside client does: GET, and on a miss SET
// the key, with the leader's write path (planEntry picks the victims, applyCommands applies
// them and the write). Only the codec and raft are left out. Keys have one length and values
// one size, so every entry costs the same bytes and the capacity is a number of entries.
import { entryBytes } from '../../src/cache/commands.ts';
import type { EvictionPolicy } from '../../src/cache/eviction-policy.ts';
import { planEntry } from '../../src/cache/prepare.ts';
import { CacheStore } from '../../src/cache/store.ts';

const VALUE = new Uint8Array(16);

/** The fixed-width key of a trace's key id (ids below 36^7). */
export function keyName(id: number): string {
  return `k${id.toString(36).padStart(7, '0')}`;
}

/** The value every SET writes (shared: the store copies it in). */
export const REPLAY_VALUE = VALUE;

export class StoreReplay {
  readonly store: CacheStore;
  #index = 0;

  constructor(policy: EvictionPolicy, capacityEntries: number) {
    const bytesPerEntry = entryBytes(keyName(0), VALUE);
    this.store = new CacheStore({ capacityBytes: capacityEntries * bytesPerEntry, policy });
  }

  /** One request at time `now`: true on a hit; a miss writes the key. */
  request(key: string, now: number): boolean {
    const store = this.store;
    if (store.get(key, now) !== undefined) return true;
    const index = ++this.#index;
    const request = { op: 'set', key, value: VALUE } as const;
    store.applyCommands(index, now, planEntry(store, [request], now).commands);
    return false;
  }
}

/** Hits of a whole trace (key ids, with `keys[id]` their names) replayed through the store. */
export function storeHits(
  trace: ArrayLike<number>,
  keys: readonly string[],
  policy: EvictionPolicy,
  capacityEntries: number,
): number {
  const replay = new StoreReplay(policy, capacityEntries);
  let hits = 0;
  for (let i = 0; i < trace.length; i++) if (replay.request(keys[trace[i]], i + 1)) hits++;
  return hits;
}
