import { invariant } from './invariant.ts';

/**
 * The last indexes of appends sent to one follower and not yet acknowledged, oldest first, in
 * a fixed ring buffer: a leader never has more than `capacity` appends in flight to one
 * follower, whatever the follower's speed.
 */
export class Inflights {
  readonly #ring: Float64Array;
  #start = 0;
  #count = 0;

  constructor(capacity: number) {
    invariant(capacity > 0, 'inflight capacity must be positive');
    this.#ring = new Float64Array(capacity);
  }

  get count(): number {
    return this.#count;
  }

  full(): boolean {
    return this.#count === this.#ring.length;
  }

  add(lastIndex: number): void {
    invariant(!this.full(), 'inflight window overflow');
    this.#ring[(this.#start + this.#count) % this.#ring.length] = lastIndex;
    this.#count++;
  }

  /** Forgets every append whose last index is at or below `index` (acknowledged). */
  freeLE(index: number): void {
    while (this.#count > 0 && this.#ring[this.#start] <= index) {
      this.#start = (this.#start + 1) % this.#ring.length;
      this.#count--;
    }
  }

  /** Forgets the oldest append: used when the follower is alive but its answers were lost. */
  freeFirstOne(): void {
    if (this.#count === 0) return;
    this.#start = (this.#start + 1) % this.#ring.length;
    this.#count--;
  }

  reset(): void {
    this.#start = 0;
    this.#count = 0;
  }
}
