// The conformance kit: checks any eviction policy against the contract of the plugin
// interface (src/cache/eviction-policy.ts), driven through a model of the store
// (model-table.ts). It has no test-runner dependency: each check is a function that throws
// a `ConformanceError` naming what broke, so a plugin's test file is a loop:
//
//   import { conformanceChecks, leastRecentlyUsed } from '../kit/conformance.ts';
//   for (const check of conformanceChecks({ create: () => new MyPolicy(), order: leastRecentlyUsed }))
//     it(check.name, check.run);
//
// A policy declares its semantics as an `order`: a comparison of two live entries that is
// negative when the first must be evicted before the second, 0 when either may go first.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { EvictionPolicy } from '../../src/cache/eviction-policy.ts';
import { mulberry32 } from '../../src/raft/random.ts';
import { type ModelEntry, ModelTable } from './model-table.ts';

export type { ModelEntry } from './model-table.ts';
export { ModelTable } from './model-table.ts';

/** Negative: `a` goes before `b`; 0: either order is fine. */
export type EvictionOrder = (a: ModelEntry, b: ModelEntry) => number;

export interface ConformanceOptions {
  /** A fresh, unattached policy. */
  create: () => EvictionPolicy;
  /** The order the policy promises while entries are inserted, updated and read. */
  order: EvictionOrder;
  /**
   * Whether `order` still holds once entries have been removed and others inserted.
   * False for policies that age (an LFU whose newcomers start level with the last victim).
   */
  orderAfterRemovals?: boolean;
  /**
   * The order a fresh policy attached to a filled store must give (it learns only the
   * metadata: `lastAccessed`, `expiresAt`, ...). Omitted: any order of the live entries.
   */
  rebuildOrder?: EvictionOrder;
  /** Bound on the policy's own memory per tracked key, in bytes. 100 by default. */
  maxBytesPerKey?: number;
  /** Seed of the random sequences (default 1), so a failure replays. */
  seed?: number;
  /** Operations in the long random run (default 20,000). */
  steps?: number;
}

export interface ConformanceCheck {
  name: string;
  run: () => void;
}

export class ConformanceError extends Error {
  override name = 'ConformanceError';
}

/** Least recently used first (reads and writes both count as use). */
export const leastRecentlyUsed: EvictionOrder = (a, b) => a.lastAccessed - b.lastAccessed;

/** Fewest uses first, then least recently used. */
export const leastFrequentlyUsed: EvictionOrder = (a, b) =>
  a.uses - b.uses || a.lastAccessed - b.lastAccessed;

/** Entries with an expiry first, soonest first; then the rest in the `then` order. */
export function soonestExpiry(then: EvictionOrder): EvictionOrder {
  return (a, b) => {
    if (a.expiresAt !== 0 && b.expiresAt !== 0) return a.expiresAt - b.expiresAt;
    if (a.expiresAt !== 0) return -1;
    if (b.expiresAt !== 0) return 1;
    return then(a, b);
  };
}

export function conformanceChecks(options: ConformanceOptions): ConformanceCheck[] {
  const seed = options.seed ?? 1;
  return [
    {
      name: 'victims are the live entries, each once, and stop when the caller stops',
      run: () => checkVictimsAreLive(options, seed),
    },
    { name: 'victims respect the declared order', run: () => checkOrder(options, seed) },
    { name: 'a victims walk changes nothing', run: () => checkReadOnlyWalk(options, seed) },
    { name: 'removals and updates are handled', run: () => checkRemovalAndUpdate(options) },
    { name: 'rebuild relearns from the metadata', run: () => checkRebuild(options, seed) },
    { name: 'memory per tracked key is bounded', run: () => checkMemory(options) },
    { name: 'survives a long random sequence', run: () => checkRandomRun(options, seed) },
  ];
}

/** Runs every check; throws the first failure. */
export function checkConformance(options: ConformanceOptions): void {
  for (const check of conformanceChecks(options)) check.run();
}

// ---- The checks.

function checkVictimsAreLive(options: ConformanceOptions, seed: number): void {
  const { table, policy } = filled(options, seed, 300, true);
  expectLiveWalk(table, policy, 'after inserts, updates, reads and removals');
  // A caller that stops early gets the first k of the same walk (`bytesNeeded` is only a
  // hint, which a sampling policy may use), and a walk never runs dry while entries remain.
  for (const bytesNeeded of [1, 1000, 10_000]) {
    const walk = [...policy.victims(bytesNeeded)];
    const taken: number[] = [];
    let freed = 0;
    for (const handle of policy.victims(bytesNeeded)) {
      if (freed >= bytesNeeded) break;
      taken.push(handle);
      freed += table.bytes(handle);
    }
    if (freed < Math.min(bytesNeeded, totalBytes(table)))
      fail(`victims(${bytesNeeded}) ran out after freeing ${freed} bytes`);
    expectEqual(taken, walk.slice(0, taken.length), `victims(${bytesNeeded}) taken partly`);
  }
  const empty = new ModelTable();
  const fresh = options.create();
  empty.attach(fresh);
  if ([...fresh.victims(1)].length !== 0) fail('victims of an empty store are not empty');
}

function checkOrder(options: ConformanceOptions, seed: number): void {
  const { table, policy } = filled(options, seed, 200, false);
  expectOrdered(table, policy, options.order, 'after inserts, updates and reads');
  if (options.orderAfterRemovals === false) return;
  const withRemovals = filled(options, seed + 1, 200, true);
  expectOrdered(withRemovals.table, withRemovals.policy, options.order, 'after removals too');
}

function checkReadOnlyWalk(options: ConformanceOptions, seed: number): void {
  const { table, policy } = filled(options, seed, 200, true);
  const before = [...policy.victims(Number.MAX_SAFE_INTEGER)];
  const partial = policy.victims(1)[Symbol.iterator]();
  partial.next();
  partial.next();
  const after = [...policy.victims(Number.MAX_SAFE_INTEGER)];
  expectEqual(after, before, 'a second walk (after a partial one)');
  // And the policy still follows later events as if no walk had happened.
  // The same seed builds the same table: read the first victim's key in both.
  const twin = filled(options, seed, 200, true);
  const key = table.key(before[0]);
  for (const model of [table, twin.table]) model.access(model.handleOf(key));
  expectEqual(
    [...policy.victims(1)],
    [...twin.policy.victims(1)],
    'a policy that was walked, against one that was not',
  );
}

function checkRemovalAndUpdate(options: ConformanceOptions): void {
  const policy = options.create();
  const table = new ModelTable();
  table.attach(policy);
  const handles = Array.from({ length: 50 }, (_, i) => table.insert(`k${i}`, 100));
  for (const handle of handles.slice(0, 25)) table.remove(handle);
  expectLiveWalk(table, policy, 'after removing half');
  // The freed handles come back for new keys: the policy must treat them as new entries.
  for (let i = 50; i < 75; i++) table.insert(`k${i}`, 100);
  expectLiveWalk(table, policy, 'after reusing the freed handles');
  for (const handle of [...table.handles()]) table.update(handle, 150, table.now + 1000);
  for (const handle of [...table.handles()]) table.update(handle, 120, 0);
  expectLiveWalk(table, policy, 'after updating sizes and expiries');
  for (const handle of [...table.handles()]) table.remove(handle);
  if ([...policy.victims(1)].length !== 0) fail('victims after removing everything are not empty');
  table.insert('last', 100);
  expectLiveWalk(table, policy, 'after emptying and inserting again');
}

function checkRebuild(options: ConformanceOptions, seed: number): void {
  // A warm policy told to rebuild (on becoming leader) keeps exactly the live entries.
  const warm = filled(options, seed, 200, true);
  warm.policy.rebuild();
  expectLiveWalk(warm.table, warm.policy, 'after rebuild on a warm policy');
  if (options.orderAfterRemovals !== false)
    expectOrdered(warm.table, warm.policy, options.order, 'after rebuild on a warm policy');
  // A fresh policy attached to a filled store (a restored snapshot) learns from metadata.
  const cold = filled(options, seed, 200, true);
  const fresh = options.create();
  cold.table.attach(fresh);
  expectLiveWalk(cold.table, fresh, 'a fresh policy attached to a filled store');
  if (options.rebuildOrder)
    expectOrdered(
      cold.table,
      fresh,
      options.rebuildOrder,
      'a fresh policy attached to a filled store',
    );
  // And it then follows events like any other.
  for (let i = 0; i < 20; i++) cold.table.insert(`after${i}`, 100);
  expectLiveWalk(cold.table, fresh, 'inserts after the rebuild');
}

function checkMemory(options: ConformanceOptions): void {
  const keys = 50_000;
  const limit = options.maxBytesPerKey ?? 100;
  const fill = (policy: EvictionPolicy | null) => {
    const table = new ModelTable();
    if (policy) table.attach(policy);
    for (let i = 0; i < keys; i++) table.insert(`k${i}`, 100);
    return table;
  };
  const measure = (policy: EvictionPolicy | null) => {
    const before = heapBytes();
    const table = fill(policy);
    const bytes = heapBytes() - before;
    if (table.size !== keys) fail('model lost keys');
    return bytes;
  };
  // The model's own memory is measured alone and taken out; best of two to damp noise.
  const modelOnly = Math.min(measure(null), measure(null));
  const withPolicy = Math.min(measure(options.create()), measure(options.create()));
  const perKey = (withPolicy - modelOnly) / keys;
  if (perKey > limit)
    fail(`the policy holds ${perKey.toFixed(1)} bytes per tracked key; the bound is ${limit}`);
}

function checkRandomRun(options: ConformanceOptions, seed: number): void {
  const random = mulberry32(seed);
  const policy = options.create();
  const table = new ModelTable();
  table.attach(policy);
  const steps = options.steps ?? 20_000;
  let next = 0;
  for (let step = 1; step <= steps; step++) {
    const live = [...table.handles()];
    const roll = random();
    const someone = () => live[Math.floor(random() * live.length)];
    if (live.length < 20 || roll < 0.3) {
      table.insert(`k${next++}`, 50 + Math.floor(random() * 500), randomExpiry(random, table.now));
    } else if (roll < 0.55) table.access(someone());
    else if (roll < 0.65)
      table.update(someone(), 50 + Math.floor(random() * 500), randomExpiry(random, table.now));
    else if (roll < 0.8) table.remove(someone());
    else if (roll < 0.99) {
      // What the store does when it needs room: remove what the walk names first.
      const first = policy.victims(100)[Symbol.iterator]().next();
      if (first.done) fail(`step ${step}: no victim among ${live.length} entries`);
      if (!table.has(first.value)) fail(`step ${step}: victim ${first.value} is not live`);
      table.remove(first.value);
    } else policy.rebuild();
    if (step % 500 === 0) expectLiveWalk(table, policy, `step ${step} of the random run`);
  }
}

// ---- Helpers.

/** A table of about `size` entries after a seeded mix of inserts, updates, reads (and removals). */
function filled(
  options: ConformanceOptions,
  seed: number,
  size: number,
  removals: boolean,
): { table: ModelTable; policy: EvictionPolicy } {
  const random = mulberry32(seed);
  const policy = options.create();
  const table = new ModelTable();
  table.attach(policy);
  let next = 0;
  for (let i = 0; i < size; i++)
    table.insert(`k${next++}`, 50 + Math.floor(random() * 500), randomExpiry(random, table.now));
  for (let i = 0; i < size * 5; i++) {
    const live = [...table.handles()];
    const handle = live[Math.floor(random() * live.length)];
    const roll = random();
    if (roll < 0.7) table.access(handle);
    else if (roll < 0.8)
      table.update(handle, 50 + Math.floor(random() * 500), randomExpiry(random, table.now));
    else if (removals) {
      table.remove(handle);
      table.insert(`k${next++}`, 50 + Math.floor(random() * 500), randomExpiry(random, table.now));
    }
  }
  return { table, policy };
}

/** A third of entries get an expiry, some sharing the same instant. */
function randomExpiry(random: () => number, now: number): number {
  return random() < 0.33 ? now + 1000 + Math.floor(random() * 50) * 10 : 0;
}

function expectLiveWalk(table: ModelTable, policy: EvictionPolicy, when: string): number[] {
  const walk = [...policy.victims(Number.MAX_SAFE_INTEGER)];
  const seen = new Set<number>();
  for (const handle of walk) {
    if (!table.has(handle)) fail(`${when}: victim ${handle} is not a live entry`);
    if (seen.has(handle)) fail(`${when}: victim ${handle} was named twice`);
    seen.add(handle);
  }
  if (seen.size !== table.size)
    fail(`${when}: the walk names ${seen.size} of ${table.size} live entries`);
  return walk;
}

function expectOrdered(
  table: ModelTable,
  policy: EvictionPolicy,
  order: EvictionOrder,
  when: string,
): void {
  const walk = expectLiveWalk(table, policy, when);
  for (let i = 1; i < walk.length; i++) {
    const a = table.entry(walk[i - 1]);
    const b = table.entry(walk[i]);
    if (order(a, b) > 0)
      fail(`${when}: victim #${i - 1} (${describe(a)}) came before #${i} (${describe(b)})`);
  }
}

function describe(entry: ModelEntry): string {
  return `${entry.key}: uses ${entry.uses}, lastAccessed ${entry.lastAccessed}, expiresAt ${entry.expiresAt}`;
}

function expectEqual(actual: number[], expected: number[], what: string): void {
  if (actual.length !== expected.length || actual.some((handle, i) => handle !== expected[i]))
    fail(`${what}: got [${actual.slice(0, 10)}...], expected [${expected.slice(0, 10)}...]`);
}

function totalBytes(table: ModelTable): number {
  let total = 0;
  for (const handle of table.handles()) total += table.bytes(handle);
  return total;
}

function fail(message: string): never {
  throw new ConformanceError(message);
}

let collect: (() => void) | null = null;

/** Heap in use, array buffers included, after a full collection. */
function heapBytes(): number {
  if (collect === null) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  for (let i = 0; i < 4; i++) collect();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}
