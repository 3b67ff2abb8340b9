// One shard's replica on one node: a raft node, its log storage and the cache store it
// replicates, driven through `Ready` in the documented order. The multi-raft host owns the
// clock, the timers and the network; it calls `tick`, `step` and `processReady` and sends
// what comes out. Requests queue here and go out once per turn of the host's loop: the
// writes of a turn become one log entry (or a few, each at most `maxEntryBytes`), the
// linearizable reads of a turn share one ReadIndex round, and the lease reads another.

import type { Logger } from 'pino';
import {
  type ApplyResult,
  beginSnapshot,
  type CacheStats,
  CacheStore,
  type CommandRequest,
  type EvictionPolicy,
  encodeEntry,
  expiryCycle,
  type Outcome,
  prepare,
  SnapshotRestorer,
  type SnapshotStream,
} from '../cache/index.ts';
import { invariant } from '../raft/invariant.ts';
import { entrySize, MemoryLogStorage } from '../raft/log-storage.ts';
import { messageProblemFor } from '../raft/message-validation.ts';
import { RaftNode } from '../raft/raft.ts';
import type { RandomSource } from '../raft/random.ts';
import type { Ready } from '../raft/ready.ts';
import { type Message, NONE, type NodeId, type Role } from '../raft/types.ts';
import { ThrottledWarnings } from '../transport/throttled-warnings.ts';
import type { SnapshotTransfer } from '../transport/transport.ts';
import {
  HostClosedError,
  NoLeaderError,
  NotLeaderError,
  ReplicaFailedError,
  type ShardError,
  ShardOverloadedError,
} from './errors.ts';
import { type OutcomeWaiter, ProposalTracker } from './proposals.ts';

/** How a read is made current: ReadIndex round, leader lease, or this replica's state as is. */
export type Consistency = 'linearizable' | 'lease' | 'stale';

export interface ReplicaTimings {
  /** Nominal tick interval in ms (leases are computed from it). */
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly leaseDriftMarginMs: number;
}

export interface ReplicaOptions extends ReplicaTimings {
  /** The host's tick count: its shards' leaders heartbeat together (see `RaftConfig`). */
  readonly heartbeatClock?: () => number;
  readonly shardId: number;
  readonly replicaId: NodeId;
  readonly voters: readonly NodeId[];
  readonly capacityBytes: number;
  /** A fresh policy for each store this replica builds (a restored one included), by shard. */
  readonly policy?: ((shardId: number) => EvictionPolicy | undefined) | undefined;
  readonly random: RandomSource;
  /** Wall clock, epoch ms: the `at` of entries, and the time reads judge expiry by. */
  readonly now: () => number;
  /** Monotonic ms: leases, expiry budgets, staleness. */
  readonly monotonic: () => number;
  /** Take a snapshot once this many entries were applied since the last one... */
  readonly snapshotEvery: number;
  /** ...or once their payloads add up to this many bytes. */
  readonly snapshotEveryBytes: number;
  /**
   * Entries kept in the log behind a snapshot, so a follower slightly behind needs none: at
   * most this many, of at most `snapshotKeepBytes` in all.
   */
  readonly snapshotKeepEntries: number;
  readonly snapshotKeepBytes: number;
  /**
   * Bytes kept behind a snapshot, at most, for a live follower that still lacks them: one
   * catching up from a snapshot of its own lacks what was written while it streamed.
   */
  readonly snapshotCatchUpBytes: number;
  /** Ticks between two active-expiry cycles on the leader. */
  readonly expiryEveryTicks: number;
  /** Soft limit on the payload of one proposed entry: a turn's writes are split above it. */
  readonly maxEntryBytes: number;
  /** Node name of a replica id of this shard (for not-leader answers and snapshot sends). */
  readonly nodeOf: (replicaId: NodeId) => string | undefined;
  /** Streams a snapshot to a peer replica; resolves once it has installed the data. */
  readonly sendSnapshot: (to: NodeId, transfer: SnapshotTransfer) => Promise<void>;
  /** Asks the host for a turn (something is pending). */
  readonly wake: () => void;
  /** This replica's logger (the host's child for its shard and replica id); silent if none. */
  readonly logger?: Logger;
}

/** `running`, or `failed`: an invariant broke inside it, and it stopped (see `Replica`). */
export type ReplicaState = 'running' | 'failed';

export interface ReplicaStats extends CacheStats {
  shardId: number;
  replicaId: NodeId;
  role: Role;
  leaderReplica: NodeId;
  leaderNode: string | undefined;
  appliedIndex: number;
  commitIndex: number;
  snapshotIndex: number;
  firstLogIndex: number;
  snapshotsInstalled: number;
  /** Monotonic ms since a leader was last heard from (0 on the leader): a stale read's bound. */
  sinceLeaderContactMs: number;
  state: ReplicaState;
  /** Why it failed (the broken invariant), when it did. */
  failure: string | undefined;
}

interface QueuedWrite {
  readonly request: CommandRequest;
  readonly waiter: OutcomeWaiter;
}

interface QueuedRead {
  serve(store: CacheStore, now: number): void;
  fail(error: Error): void;
}

/**
 * A replica whose work throws (a broken invariant: a bug, or state a message should never
 * have produced) is failed rather than left to take the process down: it stops ticking,
 * stepping and applying, its writes already in the log are answered as of unknown outcome and
 * everything else it holds as `REPLICA_FAILED`, and its stats say why. The node's other
 * replicas serve on; the shard's other replicas go on without it.
 */
export class Replica {
  readonly shardId: number;
  readonly replicaId: NodeId;
  readonly storage = new MemoryLogStorage();
  readonly node: RaftNode;
  readonly #options: ReplicaOptions;
  #store: CacheStore;
  readonly #proposals: ProposalTracker;
  #writes: QueuedWrite[] = [];
  /** The writes being proposed now: a failure part way leaves some of them untracked. */
  #proposing: readonly QueuedWrite[] = [];
  #linearizableReads: QueuedRead[] = [];
  #leaseReads: QueuedRead[] = [];
  #readContext = 0;
  /** Reads waiting for their read state, by context. */
  readonly #readsAwaitingIndex = new Map<number, QueuedRead[]>();
  /** Reads with a read index, waiting for apply to reach it (indexes ascending). */
  #readsAwaitingApply: { index: number; reads: QueuedRead[] }[] = [];
  /** The snapshot being streamed to a follower, if any: a store has one capture at a time. */
  #outgoing: SnapshotStream | undefined;
  /** A store restored from a snapshot streamed in, to install when a `Ready` hands it out. */
  #incoming: CacheStore | undefined;
  #snapshotsInstalled = 0;
  /** Bytes of the entries applied since the last snapshot (a bound on the log behind it). */
  #bytesSinceSnapshot = 0;
  #ticksSinceExpiry = 0;
  #expiryInFlight = 0;
  #lastLeaderContact: number;
  /** Monotonic ms when this replica last led (its proposals' age, once deposed). */
  #ledAt = 0;
  readonly #abandonAfterMs: number;
  #closed = false;
  #failure: string | undefined;
  readonly #logger: Logger | undefined;
  readonly #warnings: ThrottledWarnings | undefined;

  constructor(options: ReplicaOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#warnings = options.logger && new ThrottledWarnings(options.logger);
    this.shardId = options.shardId;
    this.replicaId = options.replicaId;
    this.#proposals = new ProposalTracker(options.shardId);
    this.#store = new CacheStore({
      capacityBytes: options.capacityBytes,
      policy: options.policy?.(options.shardId),
    });
    this.#lastLeaderContact = options.monotonic();
    this.#abandonAfterMs = 3 * options.electionTicks * options.tickMs;
    this.node = new RaftNode({
      id: options.replicaId,
      voters: options.voters,
      storage: this.storage,
      random: options.random,
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks,
      heartbeatClock: options.heartbeatClock,
      tickMs: options.tickMs,
      leaseDriftMarginMs: options.leaseDriftMarginMs,
      clock: options.monotonic,
      // Requests are refused on a follower with the leader's name; the client goes there.
      forwardProposals: false,
    });
  }

  get store(): CacheStore {
    return this.#store;
  }

  get isLeader(): boolean {
    return this.#failure === undefined && this.node.softState().role === 'leader';
  }

  /** Messages from peers dropped as bad, and snapshot transfers that failed. */
  get faults(): number {
    return this.#warnings?.total ?? 0;
  }

  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /** Requests queued and not yet handed to the core: the host owes this replica a turn. */
  get hasQueuedRequests(): boolean {
    return (
      this.#writes.length > 0 || this.#linearizableReads.length > 0 || this.#leaseReads.length > 0
    );
  }

  // ---- Requests (validated by the host).

  write(request: CommandRequest): Promise<Outcome> {
    const { promise, resolve, reject } = Promise.withResolvers<Outcome>();
    if (this.#closed) reject(new HostClosedError(this.shardId));
    else if (this.#failure !== undefined)
      reject(new ReplicaFailedError(this.shardId, this.replicaId, this.#failure));
    else {
      this.#writes.push({ request, waiter: { resolve, reject } });
      this.#options.wake();
    }
    return promise;
  }

  /** Runs `query` on the store once it is as current as `consistency` asks. */
  read<T>(consistency: Consistency, query: (store: CacheStore, now: number) => T): Promise<T> {
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const read: QueuedRead = {
      serve: (store, now) => resolve(query(store, now)),
      fail: reject,
    };
    if (this.#closed) reject(new HostClosedError(this.shardId));
    else if (this.#failure !== undefined)
      reject(new ReplicaFailedError(this.shardId, this.replicaId, this.#failure));
    else if (consistency === 'stale') read.serve(this.#store, this.#options.now());
    else {
      (consistency === 'lease' ? this.#leaseReads : this.#linearizableReads).push(read);
      this.#options.wake();
    }
    return promise;
  }

  stats(): ReplicaStats {
    // A failed replica leads nothing and knows no leader, whatever its core last said.
    const soft = this.#failure === undefined ? this.node.softState() : FAILED_SOFT_STATE;
    return {
      ...this.#store.stats(),
      shardId: this.shardId,
      replicaId: this.replicaId,
      role: soft.role,
      leaderReplica: soft.lead,
      leaderNode: soft.lead === NONE ? undefined : this.#options.nodeOf(soft.lead),
      appliedIndex: this.#store.appliedIndex,
      commitIndex: this.node.hardState().commit,
      snapshotIndex: this.storage.snapshot().index,
      firstLogIndex: this.storage.firstIndex(),
      snapshotsInstalled: this.#snapshotsInstalled,
      sinceLeaderContactMs:
        soft.role === 'leader' ? 0 : this.#options.monotonic() - this.#lastLeaderContact,
      state: this.#failure === undefined ? 'running' : 'failed',
      failure: this.#failure,
    };
  }

  /**
   * Runs `work` on this replica (the host's calls into its core go through here): what it
   * throws fails the replica, and `fallback` is returned instead. A failed replica does no work.
   */
  guard<T>(work: () => T, fallback: T): T {
    if (this.#failure !== undefined || this.#closed) return fallback;
    try {
      return work();
    } catch (error) {
      this.#fail(error);
      return fallback;
    }
  }

  #fail(error: unknown): void {
    this.#failure = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.#logger?.error(
      { err: error },
      'replica failed: it stops here, and the node serves its other shards',
    );
    this.#outgoing?.close();
    this.#outgoing = undefined;
    // Writes in the log may still commit through the other replicas: their outcome is unknown.
    this.#proposals.abandon('its replica failed before it applied');
    this.#failWaiting(new ReplicaFailedError(this.shardId, this.replicaId, this.#failure));
  }

  // ---- Driven by the host.

  tick(): void {
    this.guard(() => this.#tick(), undefined);
  }

  #tick(): void {
    this.node.tick();
    this.#abandonStaleProposals();
    if (++this.#ticksSinceExpiry >= this.#options.expiryEveryTicks) {
      this.#ticksSinceExpiry = 0;
      if (this.isLeader && this.#expiryInFlight === 0) this.#proposeExpiry();
    }
  }

  /**
   * A leader deposed while cut off from the new one never hears what became of its
   * proposals: once it has not led for a few election timeouts, they are answered as unknown
   * (a retry with the same write id applies at most once) rather than left to the caller's
   * deadline.
   */
  #abandonStaleProposals(): void {
    const now = this.#options.monotonic();
    if (this.isLeader) this.#ledAt = now;
    else if (this.#proposals.pending && now - this.#ledAt > this.#abandonAfterMs)
      this.#proposals.abandon('its replica lost its leadership');
  }

  /**
   * Steps a message from a peer, sent by node `sender` (checked against the replica it names,
   * when given). One that no correct peer sends is dropped, and logged.
   */
  step(message: Message, sender?: string): void {
    this.guard(() => {
      const problem = this.#problemWith(message, sender);
      if (problem === undefined) this.#step(message);
      else if (problem !== IGNORED) this.#warnings?.warn({ problem }, 'dropped a bad raft message');
    }, undefined);
  }

  /** Why `message` is not stepped: a reason to log, `IGNORED`, or undefined to step it. */
  #problemWith(message: Message, sender: string | undefined): string | undefined {
    if (message.type === 'snap') return 'a snap without its data';
    // Proposals are refused on followers, never forwarded: a peer has none to send.
    if (message.type === 'prop') return 'a proposal from a peer';
    if (sender !== undefined) {
      const node = this.#options.nodeOf(message.from);
      // A replica this node has not heard of yet (its placement is on the way) is no fault.
      if (node === undefined) return IGNORED;
      if (node !== sender) return `replica ${message.from} is on ${node}, not ${sender}`;
    }
    return messageProblemFor(message, this.node.log.lastIndex());
  }

  #step(message: Message): void {
    if (message.type === 'app' || message.type === 'heartbeat' || message.type === 'snap')
      this.#lastLeaderContact = this.#options.monotonic();
    this.node.step(message);
  }

  /** The host could not deliver messages to `to`. */
  reportUnreachable(to: NodeId): void {
    this.guard(() => this.node.reportUnreachable(to), undefined);
  }

  /**
   * Hands the turn's queued requests to the core, then handles one `Ready` if there is one,
   * passing its messages (but `snap`, streamed apart) to `send`. True if more remains.
   */
  processReady(send: (message: Message) => void): boolean {
    return this.guard(() => this.#processReady(send), false);
  }

  #processReady(send: (message: Message) => void): boolean {
    this.#flushWrites();
    this.#flushReads();
    if (!this.node.hasReady()) return false;
    this.#handleReady(this.node.ready(), send);
    return this.node.hasReady();
  }

  /**
   * A snapshot is streaming in from the leader (on node `sender`, when given): restore a store
   * from it, then step its `snap`. Data that is not the snapshot it claims is refused.
   */
  async receiveSnapshot(transfer: SnapshotTransfer, sender?: string): Promise<void> {
    if (this.#failure !== undefined)
      throw new ReplicaFailedError(this.shardId, this.replicaId, this.#failure);
    const { message } = transfer;
    const node = this.#options.nodeOf(message.from);
    if (sender !== undefined && node !== sender)
      throw new Error(`snapshot from replica ${message.from}, which is not on ${sender}`);
    if (message.snapshot?.index !== transfer.snapshot.index)
      throw new Error('the snap message names another snapshot than its transfer');
    const restorer = new SnapshotRestorer({ policy: this.#options.policy?.(this.shardId) });
    for await (const chunk of transfer.chunks) restorer.push(chunk);
    const store = restorer.finish();
    if (store.appliedIndex !== transfer.snapshot.index)
      throw new Error(
        `snapshot data at ${store.appliedIndex} for a snapshot at ${transfer.snapshot.index}`,
      );
    if (this.#closed) return;
    this.guard(() => {
      // Kept only if the core takes the snapshot: a stale one refused while an accepted one
      // waits for its `Ready` must not take that one's place.
      const waiting = this.#incoming;
      this.#incoming = store;
      this.#step(message);
      if (this.node.log.pendingSnapshot()?.index !== transfer.snapshot.index)
        this.#incoming = waiting;
    }, undefined);
    this.#options.wake();
  }

  /** Fails everything waiting; the host is closing. */
  close(): void {
    this.#closed = true;
    this.#outgoing?.close();
    // Proposed writes reached the log and may yet apply; queued ones never will.
    this.#proposals.abandon('its replica closed before it applied');
    const error = new HostClosedError(this.shardId);
    this.#failWaiting(error);
  }

  /** Fails the writes not yet proposed and every read waiting. */
  #failWaiting(error: Error): void {
    // Those already settled (tracked, then answered) stay as they are: a promise settles once.
    for (const { waiter } of [...this.#proposing, ...this.#writes]) waiter.reject(error);
    this.#proposing = [];
    const reads = [
      ...this.#linearizableReads,
      ...this.#leaseReads,
      ...[...this.#readsAwaitingIndex.values()].flat(),
      ...this.#readsAwaitingApply.flatMap((waiting) => waiting.reads),
    ];
    for (const read of reads) read.fail(error);
    this.#writes = [];
    this.#linearizableReads = [];
    this.#leaseReads = [];
    this.#readsAwaitingIndex.clear();
    this.#readsAwaitingApply = [];
  }

  // ---- The Ready, in the order `Ready` documents.

  #handleReady(ready: Ready, send: (message: Message) => void): void {
    // 1. Persist (in memory until the WAL), restoring the store from an installed snapshot.
    if (ready.snapshot) this.#installSnapshot(ready.snapshot.index);
    this.#incoming = undefined;
    if (ready.snapshot) this.storage.applySnapshot(ready.snapshot);
    if (ready.hardState) this.storage.setHardState(ready.hardState);
    this.storage.append(ready.entries);
    // 2. Send.
    for (const message of ready.messages) {
      if (message.type === 'snap') this.#streamSnapshot(message);
      else send(message);
    }
    if (ready.softState?.role === 'leader') this.#store.onBecomeLeader();
    // 3. Apply, answer proposers, serve reads that are now current, fail the lost ones.
    for (const entry of ready.committedEntries) {
      let result: ApplyResult | undefined;
      this.#bytesSinceSnapshot += entrySize(entry);
      if (entry.type === 'normal' && entry.data.byteLength > 0)
        result = this.#store.apply(entry.index, entry.data);
      else this.#store.skip(entry.index);
      this.#proposals.settle(entry.index, entry.term, result);
      if (entry.index === this.#expiryInFlight) this.#expiryInFlight = 0;
    }
    for (const { context, index } of ready.readStates) {
      const reads = this.#readsAwaitingIndex.get(context);
      if (reads === undefined) continue;
      this.#readsAwaitingIndex.delete(context);
      this.#readsAwaitingApply.push({ index, reads });
    }
    this.#serveAppliedReads();
    for (const context of ready.failedReads) {
      const reads = this.#readsAwaitingIndex.get(context) ?? [];
      this.#readsAwaitingIndex.delete(context);
      const error = this.#notLeaderError();
      for (const read of reads) read.fail(error);
    }
    // 4. Advance, then snapshot and compact if enough was applied since the last snapshot.
    this.node.advance(ready);
    this.#maybeSnapshot();
  }

  #installSnapshot(index: number): void {
    const incoming = this.#incoming;
    invariant(
      incoming?.appliedIndex === index,
      `snapshot ${index} to install, but its data never came`,
    );
    this.#store = incoming;
    this.#snapshotsInstalled++;
    this.#bytesSinceSnapshot = 0;
    this.#proposals.settleUpTo(index);
    if (this.#expiryInFlight <= index) this.#expiryInFlight = 0;
  }

  #serveAppliedReads(): void {
    const applied = this.#store.appliedIndex;
    let served = 0;
    const now = this.#options.now();
    for (const waiting of this.#readsAwaitingApply) {
      if (waiting.index > applied) break;
      for (const read of waiting.reads) read.serve(this.#store, now);
      served++;
    }
    if (served > 0) this.#readsAwaitingApply = this.#readsAwaitingApply.slice(served);
  }

  /**
   * Records a snapshot at the applied index and compacts the log behind it. The data is the
   * store itself: nothing is copied now. A follower that needs a snapshot is sent the
   * store's state when it is needed (see `#streamSnapshot`).
   */
  #maybeSnapshot(): void {
    const index = this.#store.appliedIndex;
    if (
      index - this.storage.snapshot().index < this.#options.snapshotEvery &&
      this.#bytesSinceSnapshot < this.#options.snapshotEveryBytes
    )
      return;
    this.storage.createSnapshot(index, this.node.confStateAt(index));
    this.storage.compact(this.#compactionPoint(index));
    this.#bytesSinceSnapshot = 0;
  }

  /**
   * The last entry to drop at a snapshot at `index`. What is kept stays within both keep
   * bounds, except that entries a live follower still lacks stay up to `snapshotCatchUpBytes`
   * (dropping them would cost it a whole snapshot, and one catching up from a snapshot lacks
   * all that was written while it streamed, which under steady writes would need another),
   * and nothing after a snapshot still being streamed is dropped, for the same reason.
   */
  #compactionPoint(index: number): number {
    const { snapshotKeepBytes, snapshotKeepEntries, snapshotCatchUpBytes } = this.#options;
    const lacking = this.#lowestLiveFollowerMatch();
    const first = this.storage.firstIndex() - 1;
    let keptBytes = 0;
    let point = index;
    while (point > first) {
      const lacked = lacking !== undefined && point > lacking;
      if (!lacked && index - point >= snapshotKeepEntries) break;
      const size = entrySize(this.storage.entries(point, point + 1, Number.POSITIVE_INFINITY)[0]);
      if (keptBytes + size > (lacked ? snapshotCatchUpBytes : snapshotKeepBytes)) break;
      keptBytes += size;
      point--;
    }
    return this.#outgoing ? Math.min(point, this.#outgoing.index) : point;
  }

  /** On a leader, the lowest index held by a follower heard from lately; else undefined. */
  #lowestLiveFollowerMatch(): number | undefined {
    let lowest: number | undefined;
    for (const id of [...this.node.voters, ...this.node.learners]) {
      const progress = id === this.replicaId ? undefined : this.node.progress(id);
      if (progress?.recentActive) lowest = Math.min(lowest ?? progress.match, progress.match);
    }
    return lowest;
  }

  /**
   * The core wants a follower sent the snapshot. The store has applied at least up to the
   * snapshot the core names; rather than keep a copy of the state at that index, the
   * snapshot is moved up to the applied index (a later snapshot serves as well: the follower
   * then needs fewer entries) and the store's state there is streamed by copy-on-write
   * capture, chunk by chunk, while entries keep applying. One stream at a time per store:
   * a second follower's transfer fails now and the core retries it later.
   */
  #streamSnapshot(message: Message): void {
    if (this.#outgoing !== undefined) {
      queueMicrotask(() => this.#reportSnapshot(message.to, 'failed'));
      return;
    }
    const index = this.#store.appliedIndex;
    if (index > this.storage.snapshot().index) {
      this.storage.createSnapshot(index, this.node.confStateAt(index));
      this.#bytesSinceSnapshot = 0;
    }
    const snapshot = this.storage.snapshot();
    const stream = beginSnapshot(this.#store);
    invariant(stream.index === snapshot.index, `snapshot at ${snapshot.index}, store at ${index}`);
    this.#outgoing = stream;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let chunk = stream.next(); chunk !== null; chunk = stream.next()) yield chunk;
    }
    this.#options
      .sendSnapshot(message.to, {
        shardId: this.shardId,
        message: { ...message, snapshot },
        snapshot,
        chunks: chunks(),
      })
      .then(
        () => 'done' as const,
        (error: Error) => {
          this.#warnings?.warn(
            { to: message.to, reason: error.message },
            'snapshot transfer failed; it is retried',
          );
          return 'failed' as const;
        },
      )
      .then((outcome) => {
        stream.close();
        if (this.#outgoing === stream) this.#outgoing = undefined;
        this.#reportSnapshot(message.to, outcome);
      });
  }

  #reportSnapshot(to: NodeId, outcome: 'done' | 'failed'): void {
    this.guard(() => this.node.reportSnapshot(to, outcome), undefined);
    this.#options.wake();
  }

  // ---- Leader side: proposals and reads.

  #flushWrites(): void {
    if (this.#writes.length === 0) return;
    const writes = this.#writes;
    this.#writes = [];
    this.#proposing = writes;
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < writes.length; i++) {
      bytes += requestBytes(writes[i].request);
      if (bytes >= this.#options.maxEntryBytes || i === writes.length - 1) {
        this.#propose(writes.slice(start, i + 1));
        start = i + 1;
        bytes = 0;
      }
    }
    this.#proposing = [];
  }

  /** Proposes one entry holding `writes`, planned against the entries still in flight. */
  #propose(writes: readonly QueuedWrite[]): void {
    const fail = (error: Error) => {
      for (const { waiter } of writes) waiter.reject(error);
    };
    if (!this.isLeader) {
      fail(this.#notLeaderError());
      return;
    }
    const prepared = prepare(
      this.#store,
      writes.map((write) => write.request),
      this.#options.now(),
      {
        inflightBytes: this.#proposals.inflightBytes,
        inflightVictims: this.#proposals.inflightVictims,
      },
    );
    const result = this.node.propose([prepared.payload]);
    if (result.kind === 'appended') {
      const waiters = writes.map((write) => write.waiter);
      this.#proposals.track(result.firstIndex, result.term, waiters, prepared);
    } else if (result.kind === 'refused' && result.reason === 'no-leader') {
      fail(new NoLeaderError(this.shardId));
    } else if (result.kind === 'refused' && result.reason !== 'not-leader') {
      fail(new ShardOverloadedError(this.shardId, result.reason));
    } else {
      fail(this.#notLeaderError());
    }
  }

  #flushReads(): void {
    for (const mode of ['read-index', 'lease'] as const) {
      const reads = mode === 'lease' ? this.#leaseReads : this.#linearizableReads;
      if (reads.length === 0) continue;
      if (mode === 'lease') this.#leaseReads = [];
      else this.#linearizableReads = [];
      if (!this.isLeader) {
        const error = this.#notLeaderError();
        for (const read of reads) read.fail(error);
        continue;
      }
      // All the reads of a turn share one read index, hence one heartbeat round.
      const context = ++this.#readContext;
      this.#readsAwaitingIndex.set(context, reads);
      this.node.readIndex(context, mode);
    }
  }

  /** The leader's active expiry: conditional deletes of expired keys, in one entry. */
  #proposeExpiry(): void {
    const deletes = expiryCycle(this.#store.entries, {
      now: this.#options.now(),
      random: () => this.#options.random.int(0x1_0000_0000) / 0x1_0000_0000,
      elapsed: this.#options.monotonic,
    });
    if (deletes.length === 0) return;
    const payload = encodeEntry({ at: this.#options.now(), commands: deletes });
    const result = this.node.propose([payload]);
    if (result.kind === 'appended') this.#expiryInFlight = result.firstIndex;
    this.#options.wake();
  }

  #notLeaderError(): ShardError {
    const { lead, role } = this.node.softState();
    if (role === 'leader') return new ShardOverloadedError(this.shardId, 'leadership changing');
    if (lead === NONE) return new NoLeaderError(this.shardId);
    return new NotLeaderError(this.shardId, lead, this.#options.nodeOf(lead));
  }
}

/** What a failed replica reports of its role. */
const FAILED_SOFT_STATE = { lead: NONE, role: 'follower' } as const;

/** A message dropped without a word: its cause is routine, not a fault. */
const IGNORED = '';

/** Rough payload bytes of a request, to cut a turn's writes into entries of bounded size. */
function requestBytes(request: CommandRequest): number {
  switch (request.op) {
    case 'set':
      return request.key.length + request.value.byteLength + 32;
    case 'mset':
      return request.entries.reduce((sum, e) => sum + e.key.length + e.value.byteLength + 16, 32);
    case 'del':
      return request.keys.reduce((sum, key) => sum + key.length + 8, 32);
    case 'expire':
      return request.key.length + 32;
    case 'open-session':
      return request.clientId.length + 16;
  }
}
