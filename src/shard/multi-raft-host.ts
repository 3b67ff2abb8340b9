// The host of every shard replica a node holds. One tick loop for all of them, one `Ready`
// pass over all of them per turn of the event loop (so the later WAL can commit many shards
// in one write), and the messages of that pass batched per peer node into one transport
// send. It also answers the small request API the server calls: writes and reads by shard
// (or by key, routed to its slot's shard), each a promise of an outcome or a typed error.

import { type Logger, pino } from 'pino';
import {
  type CacheStore,
  type CommandLimits,
  type CommandRequest,
  DEFAULT_LIMITS,
  type DelRequest,
  type EntryInfo,
  type EvictionPolicy,
  type ExpireRequest,
  InvalidCommandError,
  type MsetRequest,
  type OpenSessionRequest,
  type Outcome,
  type SetRequest,
  validateCommand,
  validateReadKeys,
} from '../cache/index.ts';
import type { TransferResult } from '../raft/config.ts';
import type { RandomSource } from '../raft/random.ts';
import { type Message, NONE, type NodeId } from '../raft/types.ts';
import type { NodeName, PeerTransport, ShardMessage } from '../transport/transport.ts';
import { CrossShardError, NodeNotReadyError, NotLeaderError, UnknownShardError } from './errors.ts';
import { keySlot, SLOT_COUNT, slotsOf } from './key-slot.ts';
import { nextConfChange } from './reconfigure.ts';
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
  /**
   * The shards of a cluster founded with this node: it hosts those that place a replica on it,
   * each starting with the placement's replicas as its voters. Later placements come through
   * `applyPlacement`.
   */
  readonly placement?: readonly ShardPlacement[];
  /** Shard of each slot (`SLOT_COUNT` long); by default the slots are split evenly, in order. */
  readonly slotShards?: readonly number[];
  /** Bytes each shard replica may hold (unless `applyPlacement` says otherwise). */
  readonly capacityBytes: number;
  /** Each shard replica's eviction policy (by default none: nothing is evicted). */
  readonly policy?: ((shardId: number) => EvictionPolicy | undefined) | undefined;
  readonly clock: HostClock;
  readonly random: RandomSource;
  /** Applied entries between two snapshots (default 10,000)... */
  readonly snapshotEvery?: number;
  /**
   * ...or applied bytes (default 2 MiB): snapshots cost no copy, and the log behind them is
   * what a node's memory holds beyond its cache.
   */
  readonly snapshotEveryBytes?: number;
  /** Entries kept behind a snapshot, at most (default 1,000)... */
  readonly snapshotKeepEntries?: number;
  /** ...of at most this many bytes (default 2 MiB)... */
  readonly snapshotKeepBytes?: number;
  /** ...or of this many for a live follower that lacks them (default 16 MiB). */
  readonly snapshotCatchUpBytes?: number;
  /** Ticks between two checks that each shard this node leads has the replicas placed (default 10). */
  readonly reconfigureEveryTicks?: number;
  /** Ticks between the leader's active-expiry cycles (default 10). */
  readonly expiryEveryTicks?: number;
  /** Soft limit on one proposed entry's payload (default 1 MiB). */
  readonly maxEntryBytes?: number;
  readonly limits?: Partial<Omit<CommandLimits, 'capacityBytes'>>;
  /** Failed replicas at error, dropped messages and failed snapshots at warn; silent if none. */
  readonly logger?: Logger;
}

export interface ReadOptions {
  readonly consistency?: Consistency;
  /** The shard to ask; by default the one the key's slot maps to. */
  readonly shardId?: number;
}

export interface PlacementUpdate {
  /** Every shard of the cluster, with the replicas it should have. */
  readonly shards: readonly ShardPlacement[];
  /** Shard of each slot (`SLOT_COUNT` long); none while the cluster is being founded. */
  readonly slotShards: readonly number[] | undefined;
  /** Bytes a replica of `shardId` created by this update may hold. */
  readonly capacityOf: (shardId: number) => number;
  /**
   * Whether the new replicas found their shards (all start with the placement's replicas as
   * voters) rather than join them as new, empty incarnations the leader adds as learners.
   */
  readonly founding: boolean;
}

/** Slots split into equal runs, one per shard, in the order given. */
export function evenSlotTable(shardIds: readonly number[]): number[] {
  const table: number[] = new Array(SLOT_COUNT);
  shardIds.forEach((shardId, position) => {
    const { first, last } = slotsOf(position, shardIds.length);
    table.fill(shardId, first, last + 1);
  });
  return table;
}

export class MultiRaftHost {
  readonly node: NodeName;
  readonly #transport: PeerTransport;
  readonly #options: MultiRaftHostOptions;
  readonly #replicas = new Map<number, Replica>();
  /** Node name of each replica id, per shard (a replica's `nodeOf` reads it live). */
  readonly #nodes = new Map<number, Map<NodeId, NodeName>>();
  /** The replica ids each shard should have, as the last placement said. */
  readonly #desired = new Map<number, NodeId[]>();
  #slotShards: readonly number[] | undefined;
  readonly #limits: CommandLimits;
  /** Each hosted shard's limits: the node's, with the shard replica's capacity. */
  readonly #limitsOf = new Map<number, CommandLimits>();
  readonly #clock: HostClock;
  readonly #tickMs: number;
  readonly #ticker: NodeJS.Timeout;
  /** Ticks since start: the shared clock the shards' heartbeats keep step with. */
  #ticks = 0;
  #turn: NodeJS.Immediate | undefined;
  #closed = false;
  readonly #logger: Logger;

  constructor(options: MultiRaftHostOptions) {
    this.node = options.node;
    this.#options = options;
    this.#transport = options.transport;
    this.#limits = {
      ...DEFAULT_LIMITS,
      ...options.limits,
      capacityBytes: options.capacityBytes,
    };
    this.#tickMs = options.tickMs ?? 10;
    this.#clock = options.clock;
    this.#logger = (options.logger ?? pino({ level: 'silent' })).child({ node: options.node });
    if (options.placement !== undefined) {
      this.applyPlacement({
        shards: options.placement,
        slotShards:
          options.slotShards ?? evenSlotTable(options.placement.map((shard) => shard.shardId)),
        capacityOf: () => options.capacityBytes,
        founding: true,
      });
    }
    this.#transport.onReceive((from, batch) => this.#receive(from, batch));
    this.#transport.onSnapshot(async (from, transfer) =>
      this.#replica(transfer.shardId).receiveSnapshot(transfer, from),
    );
    this.#transport.onUnreachable((peer, shardIds) => this.#unreachable(peer, shardIds));
    // setInterval never runs missed ticks after a stall: a burst of ticks would run a
    // follower's stickiness down faster than real time, which leader leases rely on.
    this.#ticker = setInterval(() => this.#tick(), this.#tickMs);
  }

  /**
   * Takes a new placement: learns where every shard's replicas are, creates the replicas
   * placed on this node that it does not hold yet, and closes those no longer placed here.
   * The leaders of the shards then change their configurations to match, one step at a time.
   */
  applyPlacement(update: PlacementUpdate): void {
    if (this.#closed) return;
    this.#slotShards = update.slotShards;
    const placed = new Set<number>();
    for (const shard of update.shards) {
      placed.add(shard.shardId);
      let nodes = this.#nodes.get(shard.shardId);
      if (nodes === undefined) {
        nodes = new Map();
        this.#nodes.set(shard.shardId, nodes);
      }
      // Earlier incarnations stay known by node: messages from them still name a sender.
      for (const { replicaId, node } of shard.replicas) nodes.set(replicaId, node);
      this.#desired.set(
        shard.shardId,
        shard.replicas.map((r) => r.replicaId),
      );
      const mine = shard.replicas.find((r) => r.node === this.node);
      const held = this.#replicas.get(shard.shardId);
      if (held !== undefined && held.replicaId !== mine?.replicaId) this.#drop(shard.shardId);
      if (mine !== undefined && !this.#replicas.has(shard.shardId)) {
        const voters = update.founding ? shard.replicas.map((r) => r.replicaId) : [];
        const capacityBytes = update.capacityOf(shard.shardId);
        this.#replicas.set(
          shard.shardId,
          this.#createReplica(shard.shardId, mine.replicaId, voters, capacityBytes),
        );
        this.#limitsOf.set(shard.shardId, { ...this.#limits, capacityBytes });
      }
    }
    for (const shardId of [...this.#replicas.keys()]) if (!placed.has(shardId)) this.#drop(shardId);
    this.#wake();
  }

  /** Ids of the shards this node hosts a replica of. */
  get shardIds(): number[] {
    return [...this.#replicas.keys()];
  }

  shardOf(key: string): number {
    if (this.#slotShards === undefined) throw new NodeNotReadyError(this.node);
    return this.#slotShards[keySlot(key)];
  }

  /** The replica of `shardId` on this node (for the server's admin calls and for tests). */
  replica(shardId: number): Replica {
    return this.#replica(shardId);
  }

  // ---- Writes: one outcome each, once applied on this node (the shard's leader).

  set(request: SetRequest, shardId?: number): Promise<Outcome> {
    return this.#write(request, () => [request.key], shardId);
  }

  del(request: DelRequest, shardId?: number): Promise<Outcome> {
    return this.#write(request, () => request.keys, shardId);
  }

  mset(request: MsetRequest, shardId?: number): Promise<Outcome> {
    return this.#write(request, () => request.entries.map((entry) => entry.key), shardId);
  }

  expire(request: ExpireRequest, shardId?: number): Promise<Outcome> {
    return this.#write(request, () => [request.key], shardId);
  }

  /** Opens a client session on `shardId`: the outcome's `version` is the session id. */
  openSession(request: OpenSessionRequest, shardId: number): Promise<Outcome> {
    try {
      // Before the map, an unknown shard says nothing yet: retry, as a write by key would.
      if (this.#slotShards === undefined) throw new NodeNotReadyError(this.node);
      const replica = this.#replica(shardId);
      validateCommand(request, this.#limits);
      return replica.write(request);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // ---- Reads.

  get(key: string, options: ReadOptions = {}): Promise<EntryInfo | undefined> {
    return this.#read([key], options, (store, now) => store.getEntry(key, now));
  }

  mget(keys: readonly string[], options: ReadOptions = {}): Promise<(EntryInfo | undefined)[]> {
    return this.#read(keys, options, (store, now) => keys.map((key) => store.getEntry(key, now)));
  }

  /** Milliseconds left, -1 without expiry, -2 when the key does not exist (Redis PTTL). */
  ttl(key: string, options: ReadOptions = {}): Promise<number> {
    return this.#read([key], options, (store, now) => store.ttl(key, now));
  }

  /** This node's replica of the shard, as it stands (replica-local counters included). */
  stats(shardId: number): ReplicaStats {
    return this.#replica(shardId).stats();
  }

  /**
   * Asks this node's replica of `shardId` to hand leadership to the replica on `target`, or
   * when none is named to a follower heard from lately whose log matches furthest.
   */
  transferLeadership(shardId: number, target?: NodeName): TransferResult {
    const replica = this.#replica(shardId);
    const nodes = this.#nodes.get(shardId) as Map<NodeId, NodeName>;
    let to: NodeId = NONE;
    let best = -1;
    for (const replicaId of replica.node.voters) {
      const node = nodes.get(replicaId);
      if (replicaId === replica.replicaId || node === undefined) continue;
      // Unnamed: a follower heard from lately (not a dead one), then the furthest matched.
      const progress = replica.node.progress(replicaId);
      const score = (progress?.recentActive ? 2 ** 52 : 0) + (progress?.match ?? -1);
      if (target === undefined ? score > best : node === target) {
        to = replicaId;
        best = score;
      }
    }
    const result =
      to === NONE
        ? 'not-a-voter'
        : replica.guard(() => replica.node.transferLeadership(to), 'not-leader' as const);
    this.#wake();
    return result;
  }

  /**
   * Before a graceful shutdown: hands every shard this node leads to a follower, and resolves
   * true once it leads none that has another voter to take over (false if some still lead
   * after `timeoutMs`).
   */
  async handOffLeadership(timeoutMs: number): Promise<boolean> {
    const leading = () =>
      this.shardIds.filter((id) => {
        const replica = this.#replica(id);
        return replica.isLeader && replica.node.voters.some((v) => v !== replica.replicaId);
      });
    const deadline = this.#clock.monotonic() + timeoutMs;
    while (leading().length > 0) {
      if (this.#clock.monotonic() >= deadline) return false;
      for (const shardId of leading())
        if (this.#replica(shardId).node.leadTransferee === NONE) this.transferLeadership(shardId);
      // A transfer takes a few ticks: the target catches up, then campaigns.
      await new Promise((resolve) => setTimeout(resolve, this.#tickMs));
    }
    return true;
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

  #createReplica(
    shardId: number,
    replicaId: NodeId,
    voters: readonly NodeId[],
    capacityBytes: number,
  ): Replica {
    const options = this.#options;
    const nodes = this.#nodes.get(shardId) as Map<NodeId, NodeName>;
    return new Replica({
      shardId,
      replicaId,
      voters,
      capacityBytes,
      policy: options.policy,
      random: options.random,
      now: () => options.clock.now(),
      monotonic: () => options.clock.monotonic(),
      tickMs: this.#tickMs,
      electionTicks: options.electionTicks ?? 10,
      heartbeatTicks: options.heartbeatTicks ?? 1,
      heartbeatClock: () => this.#ticks,
      leaseDriftMarginMs: options.leaseDriftMarginMs ?? 20,
      snapshotEvery: options.snapshotEvery ?? 10_000,
      snapshotEveryBytes: options.snapshotEveryBytes ?? 2 << 20,
      snapshotKeepEntries: options.snapshotKeepEntries ?? 1_000,
      snapshotKeepBytes: options.snapshotKeepBytes ?? 2 << 20,
      snapshotCatchUpBytes: options.snapshotCatchUpBytes ?? 16 << 20,
      expiryEveryTicks: options.expiryEveryTicks ?? 10,
      maxEntryBytes: options.maxEntryBytes ?? 1 << 20,
      nodeOf: (id) => nodes.get(id),
      sendSnapshot: (to, transfer) => {
        const peer = nodes.get(to);
        if (peer === undefined) return Promise.reject(new Error(`no node for replica ${to}`));
        return this.#transport.sendSnapshot(peer, transfer);
      },
      wake: () => this.#wake(),
      // Made once per replica: every line it logs names its shard and replica.
      logger: this.#logger.child({ shard: shardId, replica: replicaId }),
    });
  }

  /** Closes this node's replica of a shard no longer placed here (what waits on it fails). */
  #drop(shardId: number): void {
    this.#replicas.get(shardId)?.close();
    this.#replicas.delete(shardId);
    this.#limitsOf.delete(shardId);
  }

  /**
   * Each shard this node leads moves its configuration one step toward the placement's
   * replicas (refused while an earlier change is uncommitted; asked again next time).
   */
  #reconfigure(): void {
    for (const replica of this.#replicas.values()) {
      if (!replica.isLeader) continue;
      const nodes = this.#nodes.get(replica.shardId);
      const change = replica.guard(
        () =>
          nextConfChange(replica.node, this.#desired.get(replica.shardId) ?? [], (id) =>
            nodes?.get(id),
          ),
        undefined,
      );
      if (change !== undefined)
        replica.guard(() => replica.node.proposeConfChange(change), undefined);
    }
  }

  /** Validates, routes to the keys' shard (or checks they belong to `shardId`), queues. */
  #write(
    request: CommandRequest,
    keysOf: () => readonly string[],
    shardId: number | undefined,
  ): Promise<Outcome> {
    try {
      // The keys first, to route by; then the whole command, against its shard's capacity.
      const keys = keysOf();
      if (keys.length === 0) throw new InvalidCommandError(`${request.op} needs at least one key`);
      validateReadKeys(keys, this.#limits);
      const target = shardId ?? this.shardOf(keys[0]);
      this.#checkSameShard(keys, target);
      const replica = this.#replica(target);
      validateCommand(request, this.#limitsOf.get(target) ?? this.#limits);
      return replica.write(request);
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
      validateReadKeys(keys, this.#limits);
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
    if (replica !== undefined) return replica;
    // A shard placed elsewhere: send the client to one of its replicas, which knows the leader.
    const elsewhere = this.#nodes.get(shardId);
    const desired = this.#desired.get(shardId);
    if (elsewhere === undefined || desired === undefined || desired.length === 0) {
      throw new UnknownShardError(shardId, this.node);
    }
    throw new NotLeaderError(shardId, NONE, elsewhere.get(desired[0]));
  }

  #tick(): void {
    this.#ticks++;
    for (const replica of this.#replicas.values()) replica.tick();
    if (this.#ticks % (this.#options.reconfigureEveryTicks ?? 10) === 0) this.#reconfigure();
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

  /** Messages from node `from`; each replica checks that the sender is where it belongs. */
  #receive(from: NodeName, batch: readonly ShardMessage[]): void {
    if (this.#closed) return;
    for (const { shardId, message } of batch) {
      const replica = this.#replicas.get(shardId);
      if (replica !== undefined) replica.step(message, from);
      // A shard just moved away, or one this node is about to host: routine, raft resends.
      else this.#logger.debug({ shardId, from }, 'a message for a shard not hosted here');
    }
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
