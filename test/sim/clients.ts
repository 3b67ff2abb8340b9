import type { ProposeResult, ReadMode } from '../../src/raft/config.ts';
import type { Ready } from '../../src/raft/ready.ts';
import type { NodeId } from '../../src/raft/types.ts';
import { SafetyViolation } from './invariants.ts';

interface PendingRead {
  readonly node: NodeId;
  readonly mode: ReadMode;
  /** The highest index of a write acknowledged before the read began. */
  readonly mustSee: number;
  /** The simulation step the read was asked at, and the asked node's term then. */
  readonly step: number;
  readonly term: number;
}

/** The live node leading a term above `term`, if any. */
export type LeaderAbove = (term: number) => NodeId | undefined;

/**
 * The simulation's clients and the history they check reads against. A write is
 * acknowledged when the leader that appended it applies that entry (index and term), as a
 * server would answer its client. A read, by ReadIndex or lease, on any node, must see every
 * write acknowledged before it began (its read index is at least that write's index) and
 * nothing that was never committed (its read index is committed). A lease read that a leader
 * answers at once, under its lease, also promises that no other node leads a later term right
 * then: that is what a lease is, and checking it directly catches a broken lease before any
 * write happens to expose it.
 */
export class ClientWorkload {
  writesAcked = 0;
  readsServed = 0;
  readsFailed = 0;
  /** Highest index of an acknowledged write. */
  #acked = 0;
  /** Per node: index → term of the writes it appended as leader, awaiting apply. */
  readonly #awaitingApply = new Map<NodeId, Map<number, number>>();
  readonly #reads = new Map<number, PendingRead>();
  #nextRead = 1;
  readonly #leaderAbove: LeaderAbove;

  constructor(leaderAbove: LeaderAbove) {
    this.#leaderAbove = leaderAbove;
  }

  proposed(node: NodeId, result: ProposeResult): void {
    if (result.kind !== 'appended') return;
    let awaiting = this.#awaitingApply.get(node);
    if (!awaiting) {
      awaiting = new Map();
      this.#awaitingApply.set(node, awaiting);
    }
    for (let i = result.firstIndex; i <= result.lastIndex; i++) awaiting.set(i, result.term);
  }

  /** The context the next read will get. */
  get nextRead(): number {
    return this.#nextRead;
  }

  /** Starts a read; returns the context to pass to `readIndex`. */
  startRead(node: NodeId, mode: ReadMode, step: number, term: number): number {
    const context = this.#nextRead++;
    this.#reads.set(context, { node, mode, mustSee: this.#acked, step, term });
    return context;
  }

  /** A node crashed: the writes it was answering and the reads it held are gone. */
  crashed(node: NodeId): void {
    this.#awaitingApply.delete(node);
    for (const [context, read] of this.#reads) if (read.node === node) this.#reads.delete(context);
  }

  /**
   * Checks what a node's `Ready` answers; `committed` is the highest index known committed,
   * `step` the simulation step this `Ready` follows.
   */
  onReady(node: NodeId, ready: Ready, committed: number, step: number): void {
    const awaiting = this.#awaitingApply.get(node);
    if (awaiting) {
      for (const entry of ready.committedEntries) {
        const term = awaiting.get(entry.index);
        if (term === undefined) continue;
        awaiting.delete(entry.index);
        if (term !== entry.term) continue; // overwritten by another leader: never acknowledged
        this.writesAcked++;
        this.#acked = Math.max(this.#acked, entry.index);
      }
      // Appended entries below what was applied are settled one way or the other.
      if (awaiting.size > 10_000) awaiting.clear();
    }
    for (const { context, index } of ready.readStates) {
      const read = this.#reads.get(context);
      if (!read) continue;
      this.#reads.delete(context);
      if (index < read.mustSee) {
        throw new SafetyViolation(
          'stale-read',
          `${read.mode} read ${context} on node ${node} got index ${index}, but a write at ${read.mustSee} was acknowledged before it began`,
        );
      }
      if (read.mode === 'lease' && read.node === node && read.step === step) {
        const other = this.#leaderAbove(read.term);
        if (other !== undefined) {
          throw new SafetyViolation(
            'broken-lease',
            `node ${node} served lease read ${context} in term ${read.term} while node ${other} led a later term`,
          );
        }
      }
      if (index > committed) {
        throw new SafetyViolation(
          'read-past-commit',
          `read ${context} on node ${node} got index ${index}, past anything committed (${committed})`,
        );
      }
      this.readsServed++;
    }
    for (const context of ready.failedReads) {
      if (this.#reads.delete(context)) this.readsFailed++;
    }
  }
}
