import type { RaftConfig } from '../../src/raft/config.ts';
import { MemoryLogStorage } from '../../src/raft/log-storage.ts';
import { RaftNode } from '../../src/raft/raft.ts';
import { SeededRandom } from '../../src/raft/random.ts';
import type { Ready } from '../../src/raft/ready.ts';
import type { Entry, Message, NodeId, SnapshotMeta } from '../../src/raft/types.ts';

/** Builds a node; tests pass a subclass's factory to plant a bug in one rule. */
export type NodeFactory = (config: RaftConfig) => RaftNode;
export const plainNode: NodeFactory = (config) => new RaftNode(config);

export interface HostOptions {
  readonly voters: readonly NodeId[];
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly maxBytesPerAppend?: number;
  readonly maxInflightAppends?: number;
  readonly maxUncommittedBytes?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly tickMs?: number;
  readonly leaseDriftMarginMs?: number;
  /** This replica's monotonic clock (the simulator skews and pauses it). */
  readonly clock?: (id: NodeId) => number;
  readonly seed: number;
  readonly factory?: NodeFactory;
}

/** What a host sees in one `Ready`, for the checks of tests and the simulator. */
export interface ReadyReport {
  readonly id: NodeId;
  readonly ready: Ready;
}

/** Folds an applied entry into a state hash (FNV-1a): equal hashes, equal histories. */
function chainHash(hash: number, entry: Entry): number {
  let h = (hash ^ entry.index) >>> 0;
  h = Math.imul(h, 0x01000193) ^ entry.term;
  for (const byte of entry.data) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}

/**
 * One replica the way a real host runs it, minus the I/O: a node, its storage and its
 * snapshots (standing for the disk: they survive a crash), and a state machine whose whole
 * state is a hash chained over the entries it applied. `processReady` follows the order that
 * `Ready` documents.
 */
export class ReplicaHost {
  readonly id: NodeId;
  readonly storage: MemoryLogStorage;
  node: RaftNode;
  /** Entries applied since the last (re)start or snapshot restore, in order. */
  applied: Entry[] = [];
  /** The state machine: the last index applied, and the hash of everything applied. */
  appliedIndex = 0;
  stateHash = 0;
  /** Snapshot data by index (the state hash then): on "disk", it survives a crash. */
  readonly #snapshots = new Map<number, number>([[0, 0]]);
  /** Data streamed in for a snapshot about to be installed. */
  #incoming: { index: number; hash: number } | undefined;
  readonly #options: HostOptions;
  #incarnation = 0;

  constructor(id: NodeId, options: HostOptions, storage = new MemoryLogStorage()) {
    this.id = id;
    this.storage = storage;
    this.#options = options;
    this.node = this.#newNode();
  }

  /** Loses everything not persisted through a `Ready`; starts again from the latest snapshot. */
  restart(): void {
    this.#restoreFromSnapshot();
    this.#incoming = undefined;
    this.node = this.#newNode();
  }

  /**
   * Takes a snapshot of the state machine at its applied index, and compacts the log up to
   * `keep` entries before it.
   */
  takeSnapshot(keep = 0): void {
    if (this.appliedIndex <= this.storage.snapshot().index) return;
    this.storage.createSnapshot(this.appliedIndex, this.node.confStateAt(this.appliedIndex));
    this.#snapshots.set(this.appliedIndex, this.stateHash);
    this.storage.compact(Math.max(this.storage.firstIndex() - 1, this.appliedIndex - keep));
  }

  /** The data of the snapshot at `index`, as the snapshot path would stream it. */
  snapshotData(index: number): number | undefined {
    return this.#snapshots.get(index);
  }

  /** The snapshot path delivered the data of the snapshot at `index`. */
  receiveSnapshot(index: number, hash: number): void {
    this.#incoming = { index, hash };
  }

  /** Runs one `Ready` if there is one: persists, collects messages, applies, advances. */
  processReady(onReady?: (report: ReadyReport) => void): Message[] {
    if (!this.node.hasReady()) return [];
    const ready = this.node.ready();
    if (ready.snapshot) this.#installSnapshot(ready.snapshot);
    if (ready.hardState) this.storage.setHardState(ready.hardState);
    this.storage.append(ready.entries);
    for (const entry of ready.committedEntries) {
      this.applied.push(entry);
      this.appliedIndex = entry.index;
      this.stateHash = chainHash(this.stateHash, entry);
    }
    onReady?.({ id: this.id, ready });
    this.node.advance(ready);
    return [...ready.messages];
  }

  #installSnapshot(snapshot: SnapshotMeta): void {
    const data = this.#incoming;
    if (data?.index !== snapshot.index)
      throw new Error(`snapshot ${snapshot.index} to install, but its data never came`);
    this.storage.applySnapshot(snapshot);
    this.#snapshots.set(snapshot.index, data.hash);
    this.#incoming = undefined;
    this.#restoreFromSnapshot();
  }

  #restoreFromSnapshot(): void {
    const index = this.storage.snapshot().index;
    this.applied = [];
    this.appliedIndex = index;
    this.stateHash = this.#snapshots.get(index) as number;
  }

  #newNode(): RaftNode {
    const options = this.#options;
    const factory = options.factory ?? plainNode;
    // Each incarnation draws its own random sequence, still fixed by the seed.
    const seed = options.seed * 7919 + this.id * 104729 + this.#incarnation++;
    return factory({
      id: this.id,
      voters: options.voters,
      storage: this.storage,
      random: new SeededRandom(seed),
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks,
      maxBytesPerAppend: options.maxBytesPerAppend,
      maxInflightAppends: options.maxInflightAppends,
      maxUncommittedBytes: options.maxUncommittedBytes,
      applied: this.storage.snapshot().index,
      preVote: options.preVote,
      checkQuorum: options.checkQuorum,
      tickMs: options.tickMs,
      leaseDriftMarginMs: options.leaseDriftMarginMs,
      clock: options.clock ? () => (options.clock as (id: NodeId) => number)(this.id) : undefined,
    });
  }
}
