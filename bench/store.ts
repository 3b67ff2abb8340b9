// `npm run bench:store`: the cache store's hot paths at 100,000 keys of 1 KB.
// SET is measured through `apply` (decode included; encoding is the leader's and happens
// before), GET through `get`, both against a plain Map fed the same decoded entries.
// Heap per entry is measured after a forced GC and excludes the key's UTF-8 bytes and the
// value's bytes. Prints a table and writes bench/results/store.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isNativeAccelerationEnabled } from 'msgpackr';
import { decodeEntry, encodeEntry } from '../src/cache/codec.ts';
import type { Command } from '../src/cache/commands.ts';
import { CacheStore } from '../src/cache/store.ts';

const KEYS = 100_000;
const VALUE_BYTES = 1024;
const BATCH = 64;
const CLIENTS = 64;
const GETS = 2_000_000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapBytes(): number {
  // Array buffers are swept in the background: a single GC does not settle their count.
  for (let i = 0; i < 4; i++) gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

// `--long-keys`: 21-character keys like real ones; the decoder hands keys of 13 or more
// characters out as slices of one string per entry, which short keys never are.
const longKeys = process.argv.includes('--long-keys');
const keyPrefix = longKeys ? 'user:session:' : 'key:';
const keys = Array.from({ length: KEYS }, (_, i) => `${keyPrefix}${i.toString().padStart(8, '0')}`);
const keyBytes = keys.reduce((sum, key) => sum + Buffer.byteLength(key), 0);

/** Log entries of `batch` sets each, one pass over all keys; seqs continue from `seqBase`. */
function setEntries(at: number, seqBase: number, batch = BATCH): Uint8Array[] {
  const entries: Uint8Array[] = [];
  const value = Buffer.alloc(VALUE_BYTES, 7);
  for (let start = 0; start < KEYS; start += batch) {
    const commands: Command[] = [];
    for (let i = start; i < Math.min(KEYS, start + batch); i++) {
      commands.push({
        op: 'set',
        // Session ids 1..CLIENTS, from `sessionsEntry`; one write of each in flight.
        clientId: `client-${i % CLIENTS}`,
        session: (i % CLIENTS) + 1,
        seq: seqBase + Math.floor(i / CLIENTS) + 1,
        lowestPending: seqBase + Math.floor(i / CLIENTS) + 1,
        key: keys[i],
        value,
        expiresAt: 0,
        keepTtl: false,
        condition: 'none',
        ifVersion: 0,
      });
    }
    entries.push(encodeEntry({ at, commands }));
  }
  return entries;
}

function opsPerSecond(ops: number, run: () => void): number {
  const started = performance.now();
  run();
  return Math.round(ops / ((performance.now() - started) / 1000));
}

/** The entry that opens the sessions of the CLIENTS writers. */
function sessionsEntry(): Uint8Array {
  const commands: Command[] = [];
  for (let c = 0; c < CLIENTS; c++) commands.push({ op: 'open-session', clientId: `client-${c}` });
  return encodeEntry({ at: 500, commands });
}

/** A pseudo-random but fixed order of key indexes for reads. */
function readOrder(): Uint32Array {
  const order = new Uint32Array(GETS);
  let x = 12345;
  for (let i = 0; i < GETS; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    order[i] = x % KEYS;
  }
  return order;
}

function benchStore() {
  const before = heapBytes();
  const insertEntries = setEntries(1_000, 0);
  const overwriteEntries = setEntries(2_000, KEYS);
  const singleEntries = setEntries(3_000, 2 * KEYS, 1);
  const store = new CacheStore({ capacityBytes: 1024 * 1024 * 1024 });
  let index = 0;
  store.apply(++index, sessionsEntry());
  const insert = opsPerSecond(KEYS, () => {
    for (const entry of insertEntries) store.apply(++index, entry);
  });
  const overwrite = opsPerSecond(KEYS, () => {
    for (const entry of overwriteEntries) store.apply(++index, entry);
  });
  const single = opsPerSecond(KEYS, () => {
    for (const entry of singleEntries) store.apply(++index, entry);
  });
  insertEntries.length = 0;
  overwriteEntries.length = 0;
  singleEntries.length = 0;
  const perEntry = (heapBytes() - before) / KEYS - keyBytes / KEYS - VALUE_BYTES;
  const order = readOrder();
  let found = 0;
  const get = opsPerSecond(GETS, () => {
    for (let i = 0; i < GETS; i++) if (store.get(keys[order[i]], 5_000) !== undefined) found++;
  });
  if (found !== GETS || store.stats().keys !== KEYS) throw new Error('store bench lost keys');
  return { insert, overwrite, single, get, perEntry, store };
}

function benchMap() {
  const before = heapBytes();
  const insertEntries = setEntries(1_000, 0);
  const overwriteEntries = setEntries(2_000, KEYS);
  const singleEntries = setEntries(3_000, 2 * KEYS, 1);
  const map = new Map<string, Uint8Array>();
  const feed = (entries: Uint8Array[]) => {
    for (const entry of entries) {
      const decoded = decodeEntry(entry);
      if (decoded.kind !== 'ok') throw new Error('bad entry');
      for (const command of decoded.commands)
        if (command?.op === 'set') map.set(command.key, command.value);
    }
  };
  const insert = opsPerSecond(KEYS, () => feed(insertEntries));
  const overwrite = opsPerSecond(KEYS, () => feed(overwriteEntries));
  const single = opsPerSecond(KEYS, () => feed(singleEntries));
  insertEntries.length = 0;
  overwriteEntries.length = 0;
  singleEntries.length = 0;
  const perEntry = (heapBytes() - before) / KEYS - keyBytes / KEYS - VALUE_BYTES;
  const order = readOrder();
  let found = 0;
  const get = opsPerSecond(GETS, () => {
    for (let i = 0; i < GETS; i++) if (map.get(keys[order[i]]) !== undefined) found++;
  });
  if (found !== GETS) throw new Error('map bench lost keys');
  return { insert, overwrite, single, get, perEntry, map };
}

// Best of ROUNDS runs of each (the machine is shared and noisy; the first run also warms
// the JIT up). Heap per entry is from the last run.
const ROUNDS = 3;
type Result = { insert: number; overwrite: number; single: number; get: number; perEntry: number };
function best(run: () => Result): Result {
  let top: Result | null = null;
  for (let round = 0; round < ROUNDS; round++) {
    const r = run();
    top =
      top === null
        ? r
        : {
            insert: Math.max(top.insert, r.insert),
            overwrite: Math.max(top.overwrite, r.overwrite),
            single: Math.max(top.single, r.single),
            get: Math.max(top.get, r.get),
            perEntry: r.perEntry,
          };
  }
  return top as Result;
}
const mapResult = best(() => {
  const { map, ...result } = benchMap();
  map.clear();
  return result;
});
const storeResult = best(() => {
  const { store: _store, ...result } = benchStore();
  return result;
});

const rows = [
  ['SET (apply, new keys) ops/s', storeResult.insert, mapResult.insert],
  ['SET (apply, overwrite) ops/s', storeResult.overwrite, mapResult.overwrite],
  ['SET (apply, 1 per entry) ops/s', storeResult.single, mapResult.single],
  ['GET ops/s', storeResult.get, mapResult.get],
  [
    'heap bytes/entry beyond key+value',
    Math.round(storeResult.perEntry),
    Math.round(mapResult.perEntry),
  ],
] as const;

console.log(
  `cache store: ${KEYS} keys of ${keys[0].length} chars x ${VALUE_BYTES} B, ${BATCH} commands per entry, best of ${ROUNDS} runs, node ${process.version}, msgpackr native: ${isNativeAccelerationEnabled}`,
);
console.table(
  rows.map(([metric, storeValue, mapValue]) => ({
    metric,
    store: storeValue,
    'Map baseline': mapValue,
    'store / Map': Number((storeValue / mapValue).toFixed(2)),
  })),
);

const result = {
  keys: KEYS,
  keyChars: keys[0].length,
  valueBytes: VALUE_BYTES,
  commandsPerEntry: BATCH,
  rounds: ROUNDS,
  node: process.version,
  nativeMsgpack: isNativeAccelerationEnabled,
  store: storeResult,
  mapBaseline: mapResult,
  targets: { getPerSecond: 1_000_000, setPerSecond: 300_000, overheadBytesPerEntry: 200 },
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL(`./results/store${longKeys ? '-long-keys' : ''}.json`, import.meta.url),
  `${JSON.stringify(result, null, 2)}\n`,
);
console.log(`wrote bench/results/store${longKeys ? '-long-keys' : ''}.json`);
