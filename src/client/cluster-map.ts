// The cluster map as the client routes by it: slot → shard, shard → replicas and leader, node
// → address. Leaders learned from not-leader answers are noted between fetches; the map is
// fetched again (from any node it names, or the seeds) when routing goes wrong.
import { keySlot, SLOT_COUNT } from '../shard/key-slot.ts';
import { ClusterUnreachableError, InternalError, type RaftcacheError } from './errors.ts';
import type { ClientMetrics } from './metrics.ts';
import type { WireReply } from './operations.ts';

export interface ClusterNode {
  readonly id: string;
  /** `host:port`, as the node advertises it. */
  readonly address: string;
  /** "up", "down", "joining" or "leaving". */
  readonly status: string;
  readonly region: string;
  readonly capacityBytes: number;
}

export interface ShardPlacement {
  readonly id: number;
  /** Slot ranges, both ends included. */
  readonly slots: readonly { readonly first: number; readonly last: number }[];
  /** Node ids of the replicas. */
  readonly replicas: readonly string[];
  /** Node id of the last known leader. */
  readonly leader: string | undefined;
}

/** The cluster map as `Admin.ClusterMap` answers it. */
export interface ClusterMapView {
  readonly clusterId: string;
  readonly epoch: number;
  readonly slotCount: number;
  readonly nodes: readonly ClusterNode[];
  readonly shards: readonly ShardPlacement[];
}

/** Routing by one cluster map, plus the leaders learned since it was fetched. */
export class RoutingTable {
  readonly view: ClusterMapView;
  readonly #shardOfSlot: Int32Array;
  readonly #addressOf: ReadonlyMap<string, string>;
  /** Turns the replica a stale read goes to. */
  #spread = 0;
  readonly #replicas: ReadonlyMap<number, readonly string[]>;
  readonly #leaders = new Map<number, string>();

  constructor(view: ClusterMapView) {
    if (view.slotCount !== SLOT_COUNT)
      throw new InternalError(
        `the cluster map has ${view.slotCount} slots; this SDK routes over ${SLOT_COUNT}`,
      );
    this.view = view;
    this.#addressOf = new Map(view.nodes.map((n) => [n.id, n.address]));
    this.#shardOfSlot = new Int32Array(SLOT_COUNT).fill(-1);
    const replicas = new Map<number, string[]>();
    for (const shard of view.shards) {
      for (const { first, last } of shard.slots)
        this.#shardOfSlot.fill(shard.id, first, Math.min(last, SLOT_COUNT - 1) + 1);
      replicas.set(
        shard.id,
        shard.replicas.flatMap((id) => this.#addressOf.get(id) ?? []),
      );
      const leader = shard.leader && this.#addressOf.get(shard.leader);
      if (leader) this.#leaders.set(shard.id, leader);
    }
    this.#replicas = replicas;
  }

  /** The shard holding `key` (by its slot). */
  shardOf(key: string): number {
    const slot = keySlot(key);
    const shard = this.#shardOfSlot[slot];
    if (shard < 0) throw new InternalError(`slot ${slot} has no shard in the cluster map`);
    return shard;
  }

  /**
   * The address to send a shard's requests to: its leader if known, else one of its replicas.
   * A stale read (`anyReplica`) is spread over all the replicas, which answer it themselves.
   */
  target(shardId: number, attempt: number, anyReplica = false): string {
    const leader = this.#leaders.get(shardId);
    if (leader && !anyReplica) return leader;
    const replicas = this.#replicas.get(shardId) ?? [];
    if (replicas.length === 0)
      throw new InternalError(`shard ${shardId} has no replica in the cluster map`);
    return replicas[(attempt + (anyReplica ? this.#spread++ : 0)) % replicas.length];
  }

  noteLeader(shardId: number, address: string): void {
    this.#leaders.set(shardId, address);
  }

  /** Forgets a leader that failed, so that the next attempt asks around. */
  forgetLeader(shardId: number, address: string): void {
    if (this.#leaders.get(shardId) === address) this.#leaders.delete(shardId);
  }

  get addresses(): string[] {
    return [...this.#addressOf.values()];
  }
}

/** A fetched `ClusterMapReply` as the SDK's view of it. */
export function viewOf(reply: WireReply): ClusterMapView {
  return {
    clusterId: String(reply.cluster_id ?? ''),
    epoch: Number(reply.epoch ?? 0),
    slotCount: Number(reply.slot_count ?? 0),
    nodes: (reply.nodes ?? []).map((n: WireReply) => ({
      id: n.node_id,
      address: `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`,
      status: n.status,
      region: n.region,
      capacityBytes: Number(n.capacity_bytes),
    })),
    shards: (reply.shards ?? []).map((s: WireReply) => ({
      id: s.shard_id,
      slots: s.slots.map((r: WireReply) => ({ first: r.first, last: r.last })),
      replicas: s.replicas,
      leader: s.leader || undefined,
    })),
  };
}

/** How long a fetch waits for each node asked. */
const FETCH_TIMEOUT_MS = 2_000;
/** Fetches closer together than this reuse the last one (many calls may ask at once). */
const MIN_FETCH_INTERVAL_MS = 50;
/** Nodes asked at once. */
const WAVE = 3;

/** The newest cluster map the client has, and fetching it again. */
export class ClusterMapSource {
  readonly #seeds: readonly string[];
  readonly #ask: (address: string, timeoutMs: number) => Promise<WireReply>;
  readonly #metrics: ClientMetrics;
  #table: RoutingTable | undefined;
  #fetching: Promise<RoutingTable> | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;

  constructor(
    seeds: readonly string[],
    ask: (address: string, timeoutMs: number) => Promise<WireReply>,
    metrics: ClientMetrics,
  ) {
    this.#seeds = seeds;
    this.#ask = ask;
    this.#metrics = metrics;
  }

  /** The current table, if one was fetched. */
  get table(): RoutingTable | undefined {
    return this.#table;
  }

  /**
   * The current table; if there is none, fetched first (`fetch`). Deadlines are
   * `performance.now()` times.
   */
  async load(deadline: number): Promise<RoutingTable> {
    return this.#table ?? this.fetch(deadline);
  }

  /** A table fetched now, again and again until `deadline` while no node answers. */
  async fetch(deadline: number): Promise<RoutingTable> {
    for (let delay = 50; ; delay = Math.min(delay * 2, 1_000)) {
      try {
        return await this.refresh(Math.max(1, deadline - performance.now()));
      } catch (error) {
        if (deadline - performance.now() <= delay) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** A table fetched now (or just now, by another call), each node asked waiting up to `timeoutMs`. */
  refresh(timeoutMs = FETCH_TIMEOUT_MS): Promise<RoutingTable> {
    if (this.#fetching) return this.#fetching;
    if (this.#table && performance.now() - this.#fetchedAt < MIN_FETCH_INTERVAL_MS)
      return Promise.resolve(this.#table);
    this.#fetching = this.#fetch(Math.min(timeoutMs, FETCH_TIMEOUT_MS)).finally(() => {
      this.#fetching = undefined;
      this.#fetchedAt = performance.now();
    });
    return this.#fetching;
  }

  async #fetch(timeoutMs: number): Promise<RoutingTable> {
    const known = shuffled(this.#table?.addresses ?? []);
    const candidates = [...new Set([...known, ...this.#seeds])];
    const failures: string[] = [];
    for (let i = 0; i < candidates.length; i += WAVE) {
      const wave = candidates.slice(i, i + WAVE);
      try {
        const reply = await Promise.any(
          wave.map((address) =>
            this.#ask(address, timeoutMs).catch((error: RaftcacheError) => {
              failures.push(`${address}: ${error.message}`);
              throw error;
            }),
          ),
        );
        this.#metrics.mapFetches++;
        const table = new RoutingTable(viewOf(reply));
        // A client keeps the newest map it has seen.
        if (!this.#table || table.view.epoch >= this.#table.view.epoch) this.#table = table;
        return this.#table;
      } catch (error) {
        if (!(error instanceof AggregateError)) throw error;
      }
    }
    throw new ClusterUnreachableError(
      `no node answered for the cluster map (${failures.join('; ') || 'no seeds given'})`,
    );
  }
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
