// A third-party plugin that is slow to choose: the sample FIFO plugin whose victims walk
// first spins for `delayMs` (default 50) on every walk after its first `after`.
import type { EvictionPolicy } from '../../../src/cache/eviction-policy.ts';
import { FifoPolicy } from '../third-party/fifo-policy.ts';

export interface SlowOptions {
  readonly delayMs?: number;
  /** Walks that are quick before the slow ones start. */
  readonly after?: number;
}

class SlowPolicy extends FifoPolicy {
  readonly #delayMs: number;
  readonly #after: number;
  #walks = 0;

  constructor(delayMs: number, after: number) {
    super();
    this.#delayMs = delayMs;
    this.#after = after;
  }

  override *victims(): Generator<number> {
    if (++this.#walks > this.#after) {
      const until = performance.now() + this.#delayMs;
      while (performance.now() < until);
    }
    yield* super.victims();
  }
}

export function createPolicy(options: SlowOptions = {}): EvictionPolicy {
  return new SlowPolicy(options.delayMs ?? 50, options.after ?? 0);
}
