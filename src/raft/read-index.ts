import type { NodeId } from './types.ts';

/** A read waiting for the leader to confirm it still leads (§6.4 of Ongaro's thesis). */
export interface PendingRead {
  /** The requester's own id for the read. */
  readonly context: number;
  /** Who asked: this node, or a follower that forwarded the read. */
  readonly from: NodeId;
  /** The leader's commit index when the read arrived: the read is served at or after it. */
  readonly index: number;
}

interface Round {
  readonly id: number;
  /** When the round's heartbeats were sent, on the leader's monotonic clock. */
  readonly sentAt: number;
  readonly reads: PendingRead[];
  readonly acks: Set<NodeId>;
}

/** Rounds kept in flight at most; older ones fold their reads into newer ones. */
const MAX_ROUNDS_IN_FLIGHT = 32;

/**
 * The leader's heartbeat rounds and the reads waiting on them. Every heartbeat broadcast is a
 * round; a read joins the first round sent after it arrived, never one already sent, because
 * only a heartbeat sent after the read proves leadership at a moment after the read began. When
 * a majority answers a round, that round and every older one are confirmed: their reads are
 * released, and the round's send time can start a lease.
 */
export class ReadIndexQueue {
  #waiting: PendingRead[] = [];
  #rounds: Round[] = [];
  #nextRoundId = 1;

  /** A read that will join the next round. */
  add(read: PendingRead): void {
    this.#waiting.push(read);
  }

  hasWaiting(): boolean {
    return this.#waiting.length > 0;
  }

  /** Starts a round for a heartbeat broadcast sent now; returns its id for the heartbeats. */
  startRound(sentAt: number): number {
    const round: Round = { id: this.#nextRoundId++, sentAt, reads: this.#waiting, acks: new Set() };
    this.#waiting = [];
    this.#rounds.push(round);
    if (this.#rounds.length > MAX_ROUNDS_IN_FLIGHT) {
      // Never answered: its reads wait for a later round, which proves at least as much.
      const oldest = this.#rounds.shift() as Round;
      this.#rounds[0].reads.unshift(...oldest.reads);
    }
    return round.id;
  }

  /**
   * `from` answered round `roundId`. When `isQuorum` holds for its answers, returns the
   * reads released (in arrival order) and when the confirmed round was sent; else undefined.
   */
  ack(
    roundId: number,
    from: NodeId,
    isQuorum: (acks: ReadonlySet<NodeId>) => boolean,
  ): { reads: PendingRead[]; sentAt: number } | undefined {
    const position = this.#rounds.findIndex((round) => round.id === roundId);
    if (position < 0) return undefined;
    const round = this.#rounds[position];
    round.acks.add(from);
    if (!isQuorum(round.acks)) return undefined;
    const confirmed = this.#rounds.splice(0, position + 1);
    const reads: PendingRead[] = [];
    for (const done of confirmed) for (const read of done.reads) reads.push(read);
    return { reads, sentAt: round.sentAt };
  }

  /** Leadership is lost: every read still pending, to be failed. */
  drain(): PendingRead[] {
    const reads: PendingRead[] = [];
    for (const round of this.#rounds) for (const read of round.reads) reads.push(read);
    for (const read of this.#waiting) reads.push(read);
    this.#rounds = [];
    this.#waiting = [];
    return reads;
  }
}
