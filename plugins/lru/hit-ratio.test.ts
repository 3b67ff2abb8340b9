// The LRU plugin, driven through the real store's get/set path, hits exactly as often as a
// textbook LRU (a Map in recency order) on the same trace.
import { describe, expect, it } from 'vitest';
import { keyName, storeHits } from '../../bench/support/store-replay.ts';
import { LruPolicy } from './index.ts';

/** A skewed, seeded trace: key ids drawn as floor(n * u^3), so low ids are hot. */
function skewedTrace(length: number, distinct: number, seed: number): Uint32Array {
  const trace = new Uint32Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    trace[i] = Math.floor(distinct * (x / 2 ** 32) ** 3);
  }
  return trace;
}

function referenceLruHits(trace: ArrayLike<number>, capacity: number): number {
  const cache = new Map<number, true>();
  let hits = 0;
  for (let i = 0; i < trace.length; i++) {
    const key = trace[i];
    if (cache.delete(key)) hits++;
    else if (cache.size === capacity) cache.delete(cache.keys().next().value as number);
    cache.set(key, true);
  }
  return hits;
}

describe('lru plugin through the store: hit ratio', () => {
  const distinct = 5000;
  const trace = skewedTrace(40_000, distinct, 7);
  const keys = Array.from({ length: distinct }, (_, id) => keyName(id));

  it.each([50, 250, 500])('equals a reference LRU exactly at %i entries', (capacity) => {
    const expected = referenceLruHits(trace, capacity);
    expect(expected).toBeGreaterThan(0);
    expect(storeHits(trace, keys, new LruPolicy(), capacity)).toBe(expected);
  });
});
