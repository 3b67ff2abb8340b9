// The host of every shard replica a node holds. One tick loop for all of them, one `Ready`
// pass over all of them per turn of the event loop (so the later WAL can commit many shards
// in one write), and the messages of that pass batched per peer node into one transport
// send. It also answers the small request API the server calls: writes and reads by shard
// (or by key, routed to its slot's shard), each a promise of an outcome or a typed error.

import {
  type CacheStore,
  type CommandLimits,
  type CommandRequest,
  DEFAULT_LIMITS,
  type DelRequest,
  type EntryInfo,
  type EvictionPolicy,
  type ExpireRequest,
  type MsetRequest,
  type Outcome,
  type SetRequest,
  validateCommand,
} from '../cache/index.ts';
import type { RandomSource } from '../raft/random.ts';
import type { Message, NodeId } from '../raft/types.ts';
import type { NodeName, PeerTransport, ShardMessage } from '../transport/transport.ts';
import { CrossShardError, UnknownShardError } from './errors.ts';
import { keySlot, SLOT_COUNT } from './key-slot.ts';
import { type Consistency, Replica, type ReplicaStats, type ReplicaTimings } from './replica.ts';

/** Where the replicas of one shard live. */
export interface ShardPlacement {
  readonly shardId: number;
  readonly replicas: readonly { readonly replicaId: NodeId; readonly node: NodeName }[];
}

export interface HostClock {
  /** Wall clock, epoch ms: expiry times are absolute on it. */
  now(): number;
  /** Monotonic ms (performance.now): leases and budgets. */
  monotonic(): number;
}

export interface MultiRaftHostOptions extends Partial<ReplicaTimings> {
  /** This node's name, as the placement names it. */
  readonly node: NodeName;
  readonly transport: PeerTransport;
  /** Every shard of the cluster; this node hosts those that place a replica on it. */
  readonly placement: readonly ShardPlacement[];
  /** Shard of each slot (`SLOT_COUNT` long); by default the slots are split evenly, in order. */
  readonly slotShards?: readonly number[];
  /** Bytes each shard may hold. */
  readonly capacityBytes: number;
  readonly policy?: () => EvictionPolicy;
  readonly clock: HostClock;
  readonly random: RandomSource;
  /** Applied entries between two snapshots (default 10,000). */
  readonly snapshotEvery?: number;
  /** Entries kept behind a snapshot (default 1,000). */
  readonly snapshotKeepEntries?: number;
  /** Ticks between the leader's active-expiry cycles (default 10). */
  readonly expiryEveryTicks?: number;
  /** Soft limit on one proposed entry's payload (default 1 MiB). */
  readonly maxEntryBytes?: number;
  readonly limits?: Partial<Omit<CommandLimits, 'capacityBytes'>>;
}

export interface ReadOptions {
  readonly consistency?: Consistency;
  /** The shard to ask; by default the one the key's slot maps to. */
  readonly shardId?: number;
}

/** Slots split into equal runs, one per shard, in the order given. */
export function evenSlotTable(shardIds: readonly number[]): number[] {
  const table: number[] = new Array(SLOT_COUNT);
  for (let slot = 0; slot < SLOT_COUNT; slot++)
    table[slot] = shardIds[Math.floor((slot * shardIds.length) / SLOT_COUNT)];
  return table;
}

export class MultiRaftHost {
  readonly node: NodeName;
  readonly #transport: PeerTransport;
  readonly #replicas = new Map<number, Replica>();
  /** Node name of each replica id, per shard. */
  readonly #nodes = new Map<number, Map<NodeId, NodeName>>();
  readonly #slotShards: readonly number[];
  readonly #limits: CommandLimits;
  readonly #ticker: NodeJS.Timeout;
  #turn: NodeJS.Immediate | undefined;
  #closed = false;

  constructor(options: MultiRaftHostOptions) {
    this.node = options.node;
    this.#transport = options.transport;
    this.#slotShards =
      options.slotShards ?? evenSlotTable(options.placement.map((shard) => shard.shardId));
    this.#limits = {
      ...DEFAULT_LIMITS,
      ...options.limits,
      capacityBytes: options.capacityBytes,
    };
    const tickMs = options.tickMs ?? 10;
    for (const shard of options.placement) {
      const nodes = new Map(shard.replicas.map((r) => [r.replicaId, r.node] as const));
      this.#nodes.set(shard.shardId, nodes);
      const mine = shard.replicas.find((r) => r.node === options.node);
      if (mine === undefined) continue;
      this.#replicas.set(
        shard.shardId,
        new Replica({
          shardId: shard.shardId,
          replicaId: mine.replicaId,
          voters: shard.replicas.map((r) => r.replicaId),
          capacityBytes: options.capacityBytes,
          policy: options.policy,
          random: options.random,
          now: () => options.clock.now(),
          monotonic: () => options.clock.monotonic(),
          tickMs,
          electionTicks: options.electionTicks ?? 10,
          heartbeatTicks: options.heartbeatTicks ?? 1,
          leaseDriftMarginMs: options.leaseDriftMarginMs ?? 20,
          snapshotEvery: options.snapshotEvery ?? 10_000,
          snapshotKeepEntries: options.snapshotKeepEntries ?? 1_000,
          expiryEveryTicks: options.expiryEveryTicks ?? 10,
          maxEntryBytes: options.maxEntryBytes ?? 1 << 20,
          nodeOf: (replicaId) => nodes.get(replicaId),
          sendSnapshot: (to, transfer) => {
            const peer = nodes.get(to);
            if (peer === undefined) return Promise.reject(new Error(`no node for replica ${to}`));
            return this.#transport.sendSnapshot(peer, transfer);
          },
          wake: () => this.#wake(),
        }),
      );
    }
    this.#transport.onReceive((_from, batch) => this.#receive(batch));
    this.#transport.onSnapshot((_from, transfer) =>
      this.#replica(transfer.shardId).receiveSnapshot(transfer),
    );
    this.#transport.onUnreachable((peer, shardIds) => this.#unreachable(peer, shardIds));
    // setInterval never runs missed ticks after a stall: a burst of ticks would run a
    // follower's stickiness down faster than real time, which leader leases rely on.
    this.#ticker = setInterval(() => this.#tick(), tickMs);
  }

  /** Ids of the shards this node hosts a replica of. */
  get shardIds(): number[] {
    return [...this.#replicas.keys()];
  }

  shardOf(key: string): number {
    return this.#slotShards[keySlot(key)];
  }

  /** The replica of `shardId` on this node (for the server's admin calls and for tests). */
  replica(shardId: number): Replica {
    return this.#replica(shardId);
  }

  // ---- Writes: one outcome each, once applied on this node (the shard's leader).

  set(request: SetRequest, shardId = this.shardOf(request.key)): Promise<Outcome> {
    return this.#write(request, [request.key], shardId);
  }

  del(request: DelRequest, shardId = this.shardOf(request.keys[0])): Promise<Outcome> {
    return this.#write(request, request.keys, shardId);
  }

  mset(request: MsetRequest, shardId = this.shardOf(request.entries[0]?.key)): Promise<Outcome> {
    return this.#write(
      request,
      request.entries.map((entry) => entry.key),
      shardId,
    );
  }

  expire(request: ExpireRequest, shardId = this.shardOf(request.key)): Promise<Outcome> {
    return this.#write(request, [request.key], shardId);
  }

  // ---- Reads.

  get(key: string, options: ReadOptions = {}): Promise<EntryInfo | undefined> {
    return this.#read([key], options, (store, now) => store.getEntry(key, now));
  }

  mget(keys: readonly string[], options: ReadOptions = {}): Promise<(Uint8Array | undefined)[]> {
    return this.#read(keys, options, (store, now) => store.mget(keys, now));
  }

  /** Milliseconds left, -1 without expiry, -2 when the key does not exist (Redis PTTL). */
  ttl(key: string, options: ReadOptions = {}): Promise<number> {
    return this.#read([key], options, (store, now) => store.ttl(key, now));
  }

  /** This node's replica of the shard, as it stands (replica-local counters included). */
  stats(shardId: number): ReplicaStats {
    return this.#replica(shardId).stats();
  }

  /** Stops the timers, fails what waits, closes the transport. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#ticker);
    if (this.#turn !== undefined) clearImmediate(this.#turn);
    for (const replica of this.#replicas.values()) replica.close();
    await this.#transport.close();
  }

  // ---- Internals.

  #write(request: CommandRequest, keys: readonly string[], shardId: number): Promise<Outcome> {
    try {
      validateCommand(request, this.#limits);
      this.#checkSameShard(keys, shardId);
      return this.#replica(shardId).write(request);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #read<T>(
    keys: readonly string[],
    options: ReadOptions,
    query: (store: CacheStore, now: number) => T,
  ): Promise<T> {
    try {
      const shardId = options.shardId ?? this.shardOf(keys[0]);
      this.#checkSameShard(keys, shardId);
      return this.#replica(shardId).read(options.consistency ?? 'linearizable', query);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #checkSameShard(keys: readonly string[], shardId: number): void {
    for (const key of keys) {
      const owner = this.shardOf(key);
      if (owner !== shardId) throw new CrossShardError(shardId, key, owner);
    }
  }

  #replica(shardId: number): Replica {
    const replica = this.#replicas.get(shardId);
    if (replica === undefined) throw new UnknownShardError(shardId, this.node);
    return replica;
  }

  #tick(): void {
    for (const replica of this.#replicas.values()) replica.tick();
    this.#wake();
  }

  #wake(): void {
    if (this.#turn === undefined && !this.#closed) this.#turn = setImmediate(() => this.#pass());
  }

  /** One Ready pass over every replica; the messages of the pass go out batched per node. */
  #pass(): void {
    this.#turn = undefined;
    const outbox = new Map<NodeName, ShardMessage[]>();
    let more = false;
    for (const replica of this.#replicas.values()) {
      const nodes = this.#nodes.get(replica.shardId) as Map<NodeId, NodeName>;
      const send = (message: Message) => {
        const peer = nodes.get(message.to);
        if (peer === undefined) return;
        let batch = outbox.get(peer);
        if (batch === undefined) {
          batch = [];
          outbox.set(peer, batch);
        }
        batch.push({ shardId: replica.shardId, message });
      };
      if (replica.processReady(send)) more = true;
    }
    for (const [peer, batch] of outbox) this.#transport.send(peer, batch);
    if (more) this.#wake();
  }

  #receive(batch: readonly ShardMessage[]): void {
    if (this.#closed) return;
    for (const { shardId, message } of batch) this.#replicas.get(shardId)?.step(message);
    this.#wake();
  }

  #unreachable(peer: NodeName, shardIds: readonly number[]): void {
    for (const shardId of shardIds) {
      const replica = this.#replicas.get(shardId);
      const nodes = this.#nodes.get(shardId);
      if (replica === undefined || nodes === undefined) continue;
      for (const [replicaId, node] of nodes)
        if (node === peer) replica.reportUnreachable(replicaId);
    }
    this.#wake();
  }
}
