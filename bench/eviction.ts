// `npm run bench:eviction [-- --quick]`: the eviction plugins' hit ratios, driven through the
// real cache store (GET, and on a miss the leader's SET path: victims planned by the policy,
// applied with the write), and the store's own GET/SET speed with the LRU plugin against
// the `lru-cache` package on the same trace. No codec, no raft. Every entry costs the same
// bytes (fixed-width keys, 16-byte values), so a capacity is a number of entries.
//
// Traces: Zipf s = 0.8, 0.9, 1.0 over 1,000,000 keys (seeded); Zipf 0.9 with one-pass scans;
// a loop; the two real traces of ../shared/traces, whose exact LRU hit ratios (from its
// README) are printed beside the LRU plugin's. Cache sizes are 1, 5 and 10 % of the
// trace's distinct keys, rounded down as that README does.
// Prints tables and writes bench/results/eviction.json.
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { loadPolicyFactory, type PolicyFactory } from '../src/cache/plugin-loader.ts';
import { BUILT_IN_PLUGINS } from '../src/server/eviction-plugins.ts';
import { printTable, writeResults } from './support/report.ts';
import { keyName, REPLAY_VALUE, StoreReplay, storeHits } from './support/store-replay.ts';
import {
  loopTrace,
  realTrace,
  SHARED_TRACES,
  scanTrace,
  type Trace,
  zipfTrace,
} from './support/traces.ts';

const quick = process.argv.includes('--quick');
const REQUESTS = quick ? 150_000 : 600_000;
const KEYS = 1_000_000;
const SEED = 42;
const SIZES = [1, 5, 10];
const PLUGINS = ['lru', 'lfu', 'ttl'];
const SPEED_ROUNDS = quick ? 2 : 3;
const SLICES = 40;

/** Exact LRU hit ratios (%) from ../shared/traces/README.md, at 1, 5 and 10 %. */
const EXACT_LRU: Record<string, number[]> = {
  web07: [39.15, 50.56, 55.66],
  web12: [39.7, 60.0, 68.48],
};

const started = performance.now();
const factories = new Map<string, PolicyFactory>();
for (const name of PLUGINS)
  factories.set(name, await loadPolicyFactory(name, { builtIns: BUILT_IN_PLUGINS }));

// ---- Speed: the store's get/set with the LRU plugin against lru-cache, same trace.

// First, while every call site in the store has seen only the LRU plugin: a node whose
// shards share one policy. (The hit-ratio runs below mix three policy classes.)
const speedTrace = zipfTrace(REQUESTS, KEYS, 0.9, SEED);
const speedKeys = Array.from({ length: speedTrace.distinct }, (_, id) => keyName(id));
const speedEntries = Math.floor(speedTrace.distinct / 10);
/** Reads of keys that are all present: the first `speedEntries` ids, Zipf-weighted. */
const hitIds = speedTrace.ids.map((id) => id % speedEntries);
const lruFactory = factories.get('lru') as PolicyFactory;

/** One side of a comparison: serves requests `from` to `to` - 1 and returns the calls made. */
type Side = (from: number, to: number) => number;

/** Cache-aside replay through the store: GET, and SET on a miss. Counts both calls. */
function storeReplay(): Side {
  const replay = new StoreReplay(lruFactory(), speedEntries);
  const ids = speedTrace.ids;
  return (from, to) => {
    let ops = 0;
    for (let i = from; i < to; i++) ops += replay.request(speedKeys[ids[i]], i + 1) ? 1 : 2;
    return ops;
  };
}

function lruCacheReplay(): Side {
  const cache = new LRUCache<string, Uint8Array>({ max: speedEntries });
  const ids = speedTrace.ids;
  return (from, to) => {
    let ops = 0;
    for (let i = from; i < to; i++) {
      const key = speedKeys[ids[i]];
      ops++;
      if (cache.get(key) === undefined) {
        cache.set(key, REPLAY_VALUE);
        ops++;
      }
    }
    return ops;
  };
}

/** GET only, every one a hit, on a filled cache (filling is not timed). */
function storeReads(): Side {
  const replay = new StoreReplay(lruFactory(), speedEntries);
  for (let id = 0; id < speedEntries; id++) replay.request(speedKeys[id], 1);
  const store = replay.store;
  return (from, to) => {
    let found = 0;
    for (let i = from; i < to; i++)
      if (store.get(speedKeys[hitIds[i]], 2 + i) !== undefined) found++;
    if (found !== to - from) throw new Error('a read that should hit missed');
    return found;
  };
}

function lruCacheReads(): Side {
  const cache = new LRUCache<string, Uint8Array>({ max: speedEntries });
  for (let id = 0; id < speedEntries; id++) cache.set(speedKeys[id], REPLAY_VALUE);
  return (from, to) => {
    let found = 0;
    for (let i = from; i < to; i++) if (cache.get(speedKeys[hitIds[i]]) !== undefined) found++;
    if (found !== to - from) throw new Error('a read that should hit missed');
    return found;
  };
}

/**
 * Ops/s of two sides over the whole trace, run in alternating slices: the machine is shared,
 * and its load changes by the second, so both sides must meet the same load.
 */
function race(makeA: () => Side, makeB: () => Side): [number, number] {
  const a = makeA();
  const b = makeB();
  const total = [0, 0];
  const ms = [0, 0];
  const step = Math.ceil(speedTrace.ids.length / SLICES);
  for (let from = 0; from < speedTrace.ids.length; from += step) {
    const to = Math.min(speedTrace.ids.length, from + step);
    [a, b].forEach((side, i) => {
      const started = performance.now();
      total[i] += side(from, to);
      ms[i] += performance.now() - started;
    });
  }
  return [Math.round(total[0] / (ms[0] / 1000)), Math.round(total[1] / (ms[1] / 1000))];
}

// Best of a few rounds (the first also warms the JIT up).
const best = { store: 0, lruCache: 0, storeGet: 0, lruCacheGet: 0 };
for (let round = 0; round < SPEED_ROUNDS; round++) {
  const [store, lruCache] = race(storeReplay, lruCacheReplay);
  const [storeGet, lruCacheGet] = race(storeReads, lruCacheReads);
  best.store = Math.max(best.store, store);
  best.lruCache = Math.max(best.lruCache, lruCache);
  best.storeGet = Math.max(best.storeGet, storeGet);
  best.lruCacheGet = Math.max(best.lruCacheGet, lruCacheGet);
}

const speedRows = [
  {
    workload: `GET + SET on miss (${speedTrace.name}, ${speedEntries.toLocaleString('en-US')} entries)`,
    'store+lru ops/s': best.store,
    'lru-cache ops/s': best.lruCache,
    'lru-cache / store': round2(best.lruCache / best.store),
  },
  {
    workload: 'GET only, all hits',
    'store+lru ops/s': best.storeGet,
    'lru-cache ops/s': best.lruCacheGet,
    'lru-cache / store': round2(best.lruCacheGet / best.storeGet),
  },
];
console.log(
  `speed, best of ${SPEED_ROUNDS} rounds of ${SLICES} alternating slices (goal: lru-cache / store <= 1.5)`,
);
printTable(speedRows);

// ---- Hit ratios.

const traces: Trace[] = [
  zipfTrace(REQUESTS, KEYS, 0.8, SEED),
  zipfTrace(REQUESTS, KEYS, 0.9, SEED),
  zipfTrace(REQUESTS, KEYS, 1.0, SEED),
  scanTrace(REQUESTS, KEYS, SEED),
  loopTrace(REQUESTS, 50_000),
];
for (const name of Object.keys(EXACT_LRU)) {
  const trace = realTrace(name);
  if (trace) traces.push(trace);
  else console.log(`(no ${name} trace at ${SHARED_TRACES}: skipped)`);
}

interface RatioRow {
  trace: string;
  requests: number;
  distinct: number;
  sizePercent: number;
  entries: number;
  /** Hit ratio in %, per plugin. */
  ratios: Record<string, number>;
  exactLru?: number;
}

const ratioRows: RatioRow[] = [];
for (const trace of traces) {
  const keys = Array.from({ length: trace.distinct }, (_, id) => keyName(id));
  SIZES.forEach((sizePercent, i) => {
    const entries = Math.floor((trace.distinct * sizePercent) / 100);
    const ratios: Record<string, number> = {};
    for (const [name, create] of factories) {
      const hits = storeHits(trace.ids, keys, create(), entries);
      ratios[name] = round2((100 * hits) / trace.ids.length);
    }
    const exactLru = EXACT_LRU[trace.name]?.[i];
    ratioRows.push({
      trace: trace.name,
      requests: trace.ids.length,
      distinct: trace.distinct,
      sizePercent,
      entries,
      ratios,
      exactLru,
    });
  });
}

console.log(
  `\nhit ratio (%) through the store, ${REQUESTS.toLocaleString('en-US')} requests per synthetic trace${quick ? ' (--quick)' : ''}`,
);
printTable(
  ratioRows.map((row) => ({
    trace: row.trace,
    distinct: row.distinct,
    size: `${row.sizePercent} %`,
    entries: row.entries,
    ...Object.fromEntries(PLUGINS.map((name) => [name, row.ratios[name].toFixed(2)])),
    'exact LRU': row.exactLru === undefined ? '' : row.exactLru.toFixed(2),
    'lru = exact': row.exactLru === undefined ? '' : row.ratios.lru === row.exactLru ? 'yes' : 'NO',
  })),
);

const seconds = round2((performance.now() - started) / 1000);
const file = writeResults('eviction', {
  quick,
  requestsPerSyntheticTrace: REQUESTS,
  keys: KEYS,
  seed: SEED,
  hitRatios: ratioRows,
  speed: speedRows,
  seconds,
});
console.log(`\n${seconds} s; wrote ${file}`);

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
