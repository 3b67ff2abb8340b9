// Only the leader's policy picks victims. A follower's policy follows the log and the reads
// that follower served; when it is promoted, `onBecomeLeader` has it rebuild from what this
// replica knows, and its victims follow that, not what the old leader saw. A replica
// restored from a snapshot knows only the replicated metadata and starts from it.
import { describe, expect, it } from 'vitest';
import type { CommandRequest } from '../../src/cache/commands.ts';
import { loadPolicyFactory } from '../../src/cache/plugin-loader.ts';
import { prepare } from '../../src/cache/prepare.ts';
import { restoreSnapshot, snapshotChunks } from '../../src/cache/snapshot.ts';
import { CacheStore } from '../../src/cache/store.ts';
import { BUILT_IN_PLUGINS } from '../../src/server/eviction-plugins.ts';

const VALUE = new Uint8Array(8);
/** Five entries of 2-byte keys: 5 x (2 + 8 + 192) bytes. */
const CAPACITY = 5 * 202;

class Shard {
  readonly replicas: CacheStore[];
  #index: number;

  constructor(replicas: CacheStore[]) {
    this.replicas = replicas;
    this.#index = replicas[0].appliedIndex;
  }

  /** Proposes on `leader`, applies everywhere; returns the keys evicted. */
  write(leader: CacheStore, key: string, at: number, px?: number): string[] {
    const request: CommandRequest = {
      op: 'set',
      key,
      value: VALUE,
      px,
    };
    const entry = prepare(leader, [request], at);
    this.#index++;
    for (const replica of this.replicas) replica.apply(this.#index, entry.payload);
    return entry.evictedKeys;
  }
}

function readOn(replica: CacheStore, keys: string[], from: number): void {
  for (const [i, key] of keys.entries()) expect(replica.get(key, from + i)).toBeDefined();
}

describe.each([
  // plugin, victim of the promoted follower, victim of the restored replica
  ['lru', 'k0', 'k1'],
  ['lfu', 'k1', 'k1'],
  ['ttl', 'k3', 'k3'],
])('%s: leader change', (plugin, promotedVictim, restoredVictim) => {
  it("the promoted follower evicts by the reads it served, not the old leader's", async () => {
    const create = await loadPolicyFactory(plugin, { builtIns: BUILT_IN_PLUGINS });
    const leader = new CacheStore({ capacityBytes: CAPACITY, policy: create() });
    const follower = new CacheStore({ capacityBytes: CAPACITY, policy: create() });
    const shard = new Shard([leader, follower]);
    for (let i = 0; i < 5; i++) shard.write(leader, `k${i}`, i + 1, i === 3 ? 1000 : undefined);
    // The old leader served reads of k1 and k2: none of that is the follower's knowledge.
    readOn(leader, ['k1', 'k2', 'k1', 'k2'], 8);
    // The follower served stale reads: k0 three times, then every other key once.
    readOn(follower, ['k0', 'k0', 'k0', 'k1', 'k2', 'k3', 'k4'], 11);
    follower.onBecomeLeader();
    expect(shard.write(follower, 'k5', 20)).toEqual([promotedVictim]);
    for (const replica of shard.replicas) expect(replica.get(promotedVictim, 21)).toBeUndefined();
  });

  it('a replica restored from a snapshot starts from the metadata, then its own reads', async () => {
    const create = await loadPolicyFactory(plugin, { builtIns: BUILT_IN_PLUGINS });
    const leader = new CacheStore({ capacityBytes: CAPACITY, policy: create() });
    const shard = new Shard([leader]);
    for (let i = 0; i < 5; i++) shard.write(leader, `k${i}`, i + 1, i === 3 ? 1000 : undefined);
    readOn(leader, ['k1', 'k1', 'k1'], 8);
    const restored = restoreSnapshot(snapshotChunks(leader), { policy: create() });
    readOn(restored, ['k0'], 30);
    restored.onBecomeLeader();
    const promoted = new Shard([restored]);
    expect(promoted.write(restored, 'k5', 40)).toEqual([restoredVictim]);
  });
});
