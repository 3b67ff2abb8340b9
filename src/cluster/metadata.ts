// The cluster map as the metadata group (shard 0) holds it: one entry of that shard's
// replicated store, changed only by compare-and-set on its version, so concurrent changes
// (two nodes joining at once) never overwrite each other and every change is a new epoch a
// majority agreed on.

import type { Outcome } from '../cache/index.ts';
import type { MultiRaftHost } from '../shard/multi-raft-host.ts';
import {
  type ClusterMap,
  decodeClusterMap,
  encodeClusterMap,
  METADATA_SHARD,
} from './cluster-map.ts';
import { type Leadership, MAX_TERM_STEP } from './membership-limits.ts';

const MAP_KEY = 'cluster/map';
const leaderKey = (shardId: number) => `cluster/leader/${shardId}`;

/** The last known leader of a shard: a hint for clients, newer terms win. */
export interface LeaderHint {
  readonly node: string;
  readonly term: number;
}

/**
 * `policyOf` for the data shards; none for the metadata group, so it never evicts: a full
 * store refuses a write (`MetadataFullError`) rather than drop the map or a hint.
 */
export function metadataNeverEvicts<Policy>(
  policyOf: (shardId: number) => Policy,
): (shardId: number) => Policy | undefined {
  return (shardId) => (shardId === METADATA_SHARD ? undefined : policyOf(shardId));
}

/** A leadership a report claimed that the metadata group did not record, and why. */
export interface RefusedLeadership {
  readonly shardId: number;
  readonly why: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class MapConflictError extends Error {
  override name = 'MapConflictError';
  readonly code = 'MAP_CONFLICT';
}

/** The metadata group refused a write: it is full (it never evicts: cluster-membership.ts). */
export class MetadataFullError extends Error {
  override name = 'MetadataFullError';
  readonly code = 'METADATA_FULL';
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
    const outcome = await this.#host.replica(METADATA_SHARD).write({
      op: 'set',
      key: MAP_KEY,
      value: encodeClusterMap(map),
      condition: 'nx',
    });
    refuseWhenFull(outcome);
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
      refuseWhenFull(outcome);
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
   * hint names an older term. A hint is advice, so one write of all of them, no CAS. Only
   * claims `map` allows are recorded: a data shard `node` holds a replica of, in a term no
   * more than `MAX_TERM_STEP` above the hint held. The others are returned, with why.
   */
  async recordLeaders(
    map: ClusterMap,
    node: string,
    led: readonly Leadership[],
  ): Promise<RefusedLeadership[]> {
    const known = this.leaders(led.map((l) => l.shardId));
    const refused: RefusedLeadership[] = [];
    const newer = led.filter((l) => {
      const shard = map.shards.find((s) => s.shardId === l.shardId);
      const held = known.get(l.shardId)?.term ?? 0;
      let why: string | undefined;
      if (shard === undefined || shard.shardId === METADATA_SHARD)
        why = `shard ${l.shardId} is not a data shard of the map`;
      else if (!shard.replicas.some((r) => r.node === node))
        why = `node ${node} holds no replica of shard ${l.shardId}`;
      else if (l.term > held + MAX_TERM_STEP)
        why = `term ${l.term} is more than ${MAX_TERM_STEP} above the term ${held} known`;
      if (why !== undefined) refused.push({ shardId: l.shardId, why });
      return why === undefined && l.term > held;
    });
    if (newer.length === 0) return refused;
    const outcome = await this.#host.replica(METADATA_SHARD).write({
      op: 'mset',
      entries: newer.map((l) => ({
        key: leaderKey(l.shardId),
        value: encoder.encode(JSON.stringify({ node, term: l.term })),
      })),
    });
    refuseWhenFull(outcome);
    return refused;
  }
}

function refuseWhenFull(outcome: Outcome): void {
  if (outcome.status === 'refused' && outcome.code === 'OVER_CAPACITY')
    throw new MetadataFullError('the metadata group is full: it refuses writes, never evicts');
}
