import type { SeededRandom } from '../../src/raft/random.ts';
import type { Message, NodeId } from '../../src/raft/types.ts';

/** How unreliable the network is right now; the simulator changes it between phases. */
export interface LinkFaults {
  /** Chance that a message is lost. */
  drop: number;
  /** Chance that a message is delivered twice. */
  duplicate: number;
  /** Chance that a message is held back 1..maxDelay ticks (and so reordered). */
  delay: number;
  maxDelay: number;
}

export const RELIABLE: LinkFaults = { drop: 0, duplicate: 0, delay: 0, maxDelay: 0 };

interface InFlight {
  readonly deliverAt: number;
  readonly message: Message;
}

/**
 * An in-memory network driven by the simulation's seeded random source: it loses,
 * duplicates, delays and reorders messages, and cuts links one way or both.
 */
export class SimNetwork {
  faults: LinkFaults = RELIABLE;
  readonly #random: SeededRandom;
  readonly #cut = new Set<string>();
  #inFlight: InFlight[] = [];

  constructor(random: SeededRandom) {
    this.#random = random;
  }

  get size(): number {
    return this.#inFlight.length;
  }

  send(message: Message, now: number): void {
    const { drop, duplicate, delay, maxDelay } = this.faults;
    if (this.#random.chance(drop)) return;
    const copies = this.#random.chance(duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const held = this.#random.chance(delay) ? 1 + this.#random.int(maxDelay) : 0;
      this.#inFlight.push({ deliverAt: now + held, message });
    }
  }

  /** Puts a message back, to be delivered at `at` (its receiver cannot take it yet). */
  hold(message: Message, at: number): void {
    this.#inFlight.push({ deliverAt: at, message });
  }

  /** Takes one message due by `now`, picked at random (so equal-time messages reorder). */
  takeDue(now: number): Message | undefined {
    for (let attempts = 0; attempts < 4 && this.#inFlight.length > 0; attempts++) {
      const i = this.#random.int(this.#inFlight.length);
      const item = this.#inFlight[i];
      if (item.deliverAt <= now) return this.#remove(i);
    }
    const i = this.#inFlight.findIndex((item) => item.deliverAt <= now);
    return i < 0 ? undefined : this.#remove(i);
  }

  /** Whether a message from `from` to `to` gets through the current partitions. */
  connected(from: NodeId, to: NodeId): boolean {
    return !this.#cut.has(`${from}>${to}`);
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.#cut.add(`${from}>${to}`);
  }

  /** Cuts the link between `a` and `b`, both ways; other links stay up. */
  cut(a: NodeId, b: NodeId): void {
    this.cutOneWay(a, b);
    this.cutOneWay(b, a);
  }

  /** Splits the nodes into `side` and the rest, both ways. */
  partition(side: readonly NodeId[], all: readonly NodeId[]): void {
    for (const a of side) {
      for (const b of all) {
        if (side.includes(b)) continue;
        this.#cut.add(`${a}>${b}`);
        this.#cut.add(`${b}>${a}`);
      }
    }
  }

  heal(): void {
    this.#cut.clear();
  }

  #remove(i: number): Message {
    const item = this.#inFlight[i];
    const last = this.#inFlight.pop() as InFlight;
    if (i < this.#inFlight.length) this.#inFlight[i] = last;
    return item.message;
  }
}
