/** The only source of randomness the core uses; the host injects it (seeded in tests). */
export interface RandomSource {
  /** A uniformly distributed integer in [0, bound). */
  int(bound: number): number;
}

/**
 * A small, fast, seeded generator (SplitMix32-style mixing over a Weyl sequence): the same
 * seed gives the same sequence on every machine, so a simulation replays exactly.
 */
export class SeededRandom implements RandomSource {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A uniformly distributed 32-bit unsigned integer. */
  next(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  int(bound: number): number {
    return Math.floor((this.next() / 0x1_0000_0000) * bound);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

/**
 * mulberry32: a seeded uniform source in [0, 1), for workloads outside the core (the eviction
 * benchmark's traces, the plugin kit's random runs, tests). It is a second generator, not
 * SeededRandom, because results were measured on each sequence: the README's hit-ratio table
 * on this one, the simulator's planted-bug budgets and golden scenarios on SeededRandom's.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
