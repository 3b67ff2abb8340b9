// Key-id traces for the eviction benchmark: seeded synthetic ones (Zipf, Zipf with scans,
// a loop) and the real ones in ../shared/traces (xz-compressed 32-bit big-endian ids).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { mulberry32 } from '../../src/raft/random.ts';

export interface Trace {
  name: string;
  /** Key ids in request order, renumbered densely from 0 (so `keys[id]` can name them). */
  ids: Uint32Array;
  distinct: number;
}

/** Samples ranks 0..n-1 with P(k) proportional to 1/(k+1)^s, by inverting the CDF. */
export function zipfSampler(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += 1 / (k + 1) ** s;
    cdf[k] = sum;
  }
  return () => {
    const target = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < target) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

export function zipfTrace(requests: number, keys: number, s: number, seed: number): Trace {
  const next = zipfSampler(keys, s, mulberry32(seed));
  const raw = new Uint32Array(requests);
  for (let i = 0; i < requests; i++) raw[i] = next();
  return renumbered(`zipf ${s.toFixed(1)}`, raw);
}

/**
 * Zipf 0.9 with a one-pass scan over `scanLength` never-seen keys after every
 * `between` requests: the pattern that flushes an LRU.
 */
export function scanTrace(requests: number, keys: number, seed: number): Trace {
  const next = zipfSampler(keys, 0.9, mulberry32(seed));
  const between = Math.floor(requests / 10);
  const scanLength = Math.floor(between / 4);
  const raw = new Uint32Array(requests);
  let scanned = keys;
  for (let i = 0; i < requests; ) {
    for (let j = 0; j < between && i < requests; j++) raw[i++] = next();
    for (let j = 0; j < scanLength && i < requests; j++) raw[i++] = scanned++;
  }
  return renumbered('zipf 0.9 + scans', raw);
}

/** The same `length` keys requested in a cycle: LRU's worst case once the loop exceeds the cache. */
export function loopTrace(requests: number, length: number): Trace {
  const raw = new Uint32Array(requests);
  for (let i = 0; i < requests; i++) raw[i] = i % length;
  return renumbered(`loop ${length.toLocaleString('en-US')}`, raw);
}

/** The repository's sibling `../shared/traces`, found from the repository root. */
export const SHARED_TRACES = path.join(import.meta.dirname, '..', '..', '..', 'shared', 'traces');

/** A real trace (`web07`, `web12`), or null when the shared folder is not beside the repo. */
export function realTrace(name: string): Trace | null {
  const file = path.join(SHARED_TRACES, `${name}.trace.xz`);
  if (!existsSync(file)) return null;
  const bytes = execFileSync('xz', ['-dc', file], { maxBuffer: 1 << 28 });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const raw = new Uint32Array(bytes.byteLength / 4);
  for (let i = 0; i < raw.length; i++) raw[i] = view.getInt32(i * 4, false) >>> 0;
  return renumbered(name, raw);
}

function renumbered(name: string, raw: Uint32Array): Trace {
  const ids = new Map<number, number>();
  const out = new Uint32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    let id = ids.get(raw[i]);
    if (id === undefined) {
      id = ids.size;
      ids.set(raw[i], id);
    }
    out[i] = id;
  }
  return { name, ids: out, distinct: ids.size };
}
