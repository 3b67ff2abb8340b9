// The cluster map as the metadata group (shard 0) holds it: one entry of that shard's
// replicated store, changed only by compare-and-set on its version, so concurrent changes
// (two nodes joining at once) never overwrite each other and every change is a new epoch a
// majority agreed on.

import type { MultiRaftHost } from '../shard/multi-raft-host.ts';
import {
  type ClusterMap,
  decodeClusterMap,
  encodeClusterMap,
  METADATA_SHARD,
} from './cluster-map.ts';

const MAP_KEY = 'cluster/map';
const leaderKey = (shardId: number) => `cluster/leader/${shardId}`;

/** The last known leader of a shard: a hint for clients, newer terms win. */
export interface LeaderHint {
  readonly node: string;
  readonly term: number;
}

/** A shard a node reports leading, in which term. */
export interface Leadership {
  readonly shardId: number;
  readonly term: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class MapConflictError extends Error {
  override name = 'MapConflictError';
  readonly code = 'MAP_CONFLICT';
}

export class MetadataStore {
  readonly #host: MultiRaftHost;
  /** The last map decoded, by the version of its entry: nodes look every 100 ms. */
  #decoded: { version: number; map: ClusterMap } | undefined;

  // Its writes carry no write id: each is sent once, never retried (a failed update reads
  // the map again and writes anew), so there is nothing to deduplicate.
  constructor(host: MultiRaftHost) {
    this.#host = host;
  }

  /** Whether this node holds a replica of the metadata group. */
  get isMember(): boolean {
    return this.#host.shardIds.includes(METADATA_SHARD);
  }

  /** Whether this node's replica of the metadata group leads it. */
  get isLeader(): boolean {
    return this.isMember && this.#host.replica(METADATA_SHARD).isLeader;
  }

  /** The node that leads the metadata group, as this node's replica knows it. */
  get leaderNode(): string | undefined {
    return this.isMember ? this.#host.stats(METADATA_SHARD).leaderNode : undefined;
  }

  /** The map this node's replica holds now, possibly behind the leader's; none if no replica. */
  local(): ClusterMap | undefined {
    if (!this.isMember) return undefined;
    const entry = this.#host.replica(METADATA_SHARD).store.getEntry(MAP_KEY, Date.now());
    if (entry === undefined) return undefined;
    if (this.#decoded?.version !== entry.version)
      this.#decoded = { version: entry.version, map: decodeClusterMap(entry.value) };
    return this.#decoded.map;
  }

  /** Writes a new cluster's first map, unless one is there already. Rejects off the leader. */
  async found(map: ClusterMap): Promise<void> {
    await this.#host.replica(METADATA_SHARD).write({
      op: 'set',
      key: MAP_KEY,
      value: encodeClusterMap(map),
      condition: 'nx',
    });
  }

  /**
   * Changes the map on the metadata group's leader: reads it linearizably, applies `change`,
   * and writes the result only if nobody changed the map in between (retrying then); a
   * `change` that returns the map it was given writes nothing. Rejects
   * off the leader with a not-leader error naming the leader.
   */
  async update(change: (map: ClusterMap) => ClusterMap): Promise<ClusterMap> {
    const replica = this.#host.replica(METADATA_SHARD);
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await replica.read('linearizable', (store, now) =>
        store.getEntry(MAP_KEY, now),
      );
      if (entry === undefined) throw new MapConflictError('the cluster has no map yet');
      const current = decodeClusterMap(entry.value);
      const next = change(current);
      if (next === current) return current;
      const outcome = await replica.write({
        op: 'set',
        key: MAP_KEY,
        value: encodeClusterMap(next),
        ifVersion: entry.version,
      });
      if (outcome.status === 'applied') return next;
    }
    throw new MapConflictError('the cluster map kept changing under an update; retry');
  }

  /** The leader hints this node's replica holds for `shardIds`. */
  leaders(shardIds: readonly number[]): Map<number, LeaderHint> {
    const hints = new Map<number, LeaderHint>();
    if (!this.isMember) return hints;
    const store = this.#host.replica(METADATA_SHARD).store;
    for (const shardId of shardIds) {
      const entry = store.getEntry(leaderKey(shardId), Date.now());
      if (entry !== undefined) hints.set(shardId, JSON.parse(decoder.decode(entry.value)));
    }
    return hints;
  }

  /**
   * On the metadata group's leader: records that `node` leads these shards, for those whose
   * hint names an older term. A hint is advice, so one write of all of them, no CAS.
   */
  async recordLeaders(node: string, led: readonly Leadership[]): Promise<void> {
    const known = this.leaders(led.map((l) => l.shardId));
    const newer = led.filter((l) => (known.get(l.shardId)?.term ?? -1) < l.term);
    if (newer.length === 0) return;
    await this.#host.replica(METADATA_SHARD).write({
      op: 'mset',
      entries: newer.map((l) => ({
        key: leaderKey(l.shardId),
        value: encoder.encode(JSON.stringify({ node, term: l.term })),
      })),
    });
  }
}
