import type { SeededRandom } from '../../src/raft/random.ts';
import type { Message } from '../../src/raft/types.ts';

/** A snapshot on its way: the `snap` message, and the data streamed ahead of it. */
export interface SnapshotTransfer {
  readonly message: Message;
  readonly data: number;
  readonly deliverAt: number;
}

/**
 * The snapshot path of the simulated hosts: snapshots stream apart from raft messages and take
 * a few ticks (a slow link), so heartbeats and appends to other followers never wait behind
 * them. The simulator delivers each when due, or reports it failed.
 */
export class SnapshotTransfers {
  readonly #random: SeededRandom;
  #inFlight: SnapshotTransfer[] = [];

  constructor(random: SeededRandom) {
    this.#random = random;
  }

  start(message: Message, data: number, now: number): void {
    this.#inFlight.push({ message, data, deliverAt: now + 1 + this.#random.int(5) });
  }

  /** Takes the transfers due by `now`. */
  takeDue(now: number): SnapshotTransfer[] {
    const due = this.#inFlight.filter((t) => t.deliverAt <= now);
    if (due.length > 0) this.#inFlight = this.#inFlight.filter((t) => t.deliverAt > now);
    return due;
  }
}
