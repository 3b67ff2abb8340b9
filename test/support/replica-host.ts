import { type RaftConfig, RaftNode } from '../../src/raft/raft.ts';
import { SeededRandom } from '../../src/raft/random.ts';
import type { Ready } from '../../src/raft/ready.ts';
import type { Entry, Message, NodeId } from '../../src/raft/types.ts';
import { MemoryLogStorage } from '../../src/storage/log-storage.ts';

/** Builds a node; tests pass a subclass's factory to plant a bug in one rule. */
export type NodeFactory = (config: RaftConfig) => RaftNode;
export const plainNode: NodeFactory = (config) => new RaftNode(config);

export interface HostOptions {
  readonly voters: readonly NodeId[];
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly maxBytesPerAppend?: number;
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

/**
 * One replica the way a real host runs it, minus the I/O: a node, its storage (standing for
 * the disk: it survives a crash), and the entries it applied (lost in a crash, rebuilt by
 * replaying the log). `processReady` follows the order that `Ready` documents.
 */
export class ReplicaHost {
  readonly id: NodeId;
  readonly storage: MemoryLogStorage;
  node: RaftNode;
  /** Entries applied since the last (re)start, in order; `applied[i]` has index i + 1. */
  applied: Entry[] = [];
  readonly #options: HostOptions;
  #incarnation = 0;

  constructor(id: NodeId, options: HostOptions, storage = new MemoryLogStorage()) {
    this.id = id;
    this.storage = storage;
    this.#options = options;
    this.node = this.#newNode();
  }

  /** Loses everything not persisted through a `Ready`, and starts again from storage. */
  restart(): void {
    this.applied = [];
    this.node = this.#newNode();
  }

  /** Runs one `Ready` if there is one: persists, collects messages, applies, advances. */
  processReady(onReady?: (report: ReadyReport) => void): Message[] {
    if (!this.node.hasReady()) return [];
    const ready = this.node.ready();
    if (ready.hardState) this.storage.setHardState(ready.hardState);
    this.storage.append(ready.entries);
    for (const entry of ready.committedEntries) this.applied.push(entry);
    onReady?.({ id: this.id, ready });
    this.node.advance(ready);
    return [...ready.messages];
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
      preVote: options.preVote,
      checkQuorum: options.checkQuorum,
      tickMs: options.tickMs,
      leaseDriftMarginMs: options.leaseDriftMarginMs,
      clock: options.clock ? () => (options.clock as (id: NodeId) => number)(this.id) : undefined,
    });
  }
}
