// Plugins are untrusted code: one that throws in any hook, returns a promise, names bad
// victims or is slow must never change what a replica holds. Three real stores, each with
// its own copy of the plugin (loaded by path, through the composition root), apply what
// the first one, the leader, prepares: every entry applies everywhere, the replicas' digests
// stay equal, the failing copies fall back to LRU (logged once each) and STATS says so.
import { describe, expect, it } from 'vitest';
import type { CommandRequest, Outcome } from '../../src/cache/commands.ts';
import { ENTRY_OVERHEAD_BYTES } from '../../src/cache/commands.ts';
import type { PolicyHook } from '../../src/cache/policy-guard.ts';
import { prepare } from '../../src/cache/prepare.ts';
import { CacheStore } from '../../src/cache/store.ts';
import { type LoadedPlugin, loadBroken } from './broken-support.ts';

const VALUE = new Uint8Array(40);
/** A value whose write needs several victims, so that a walk goes on past its first. */
const BIG_VALUE = new Uint8Array(3 * (ENTRY_OVERHEAD_BYTES + 40));
/** About ten entries: the workload evicts on most writes once warm. */
const CAPACITY = 10 * (ENTRY_OVERHEAD_BYTES + 3 + VALUE.byteLength);

const refused = (outcome: Outcome) => outcome.status === 'refused';

class ThreeReplicas {
  readonly stores: CacheStore[];
  readonly outcomes: Outcome[] = [];
  #index = 0;

  constructor(plugin: LoadedPlugin) {
    this.stores = [0, 1, 2].map(
      () => new CacheStore({ capacityBytes: CAPACITY, policy: plugin.create(1) }),
    );
  }

  get leader(): CacheStore {
    return this.stores[0] as CacheStore;
  }

  write(request: CommandRequest, at: number): void {
    const entry = prepare(this.leader, [request], at);
    this.#index++;
    const results = this.stores.map((store) => store.apply(this.#index, entry.payload));
    this.outcomes.push(...(results[0]?.outcomes ?? []));
  }

  /**
   * Writes that overflow the capacity (some needing several victims), overwrites (of the oldest key too: FIFO names the key
   * being written, which the store skips), expiry changes, deletes, reads on every replica,
   * and a leader change half way.
   */
  run(steps: number): void {
    for (let i = 0; i < steps; i++) {
      const at = 1000 + i;
      const key = `k${i % 25}`;
      if (i === steps / 2) this.leader.onBecomeLeader();
      if (i % 7 === 3) this.write({ op: 'expire', key: `k${(i - 1) % 25}`, ttlMs: 60_000 }, at);
      else if (i % 11 === 5) this.write({ op: 'del', keys: [`k${(i - 2) % 25}`] }, at);
      else this.write({ op: 'set', key, value: i % 9 === 8 ? BIG_VALUE : VALUE }, at);
      for (const store of this.stores) store.get(`k${(i + 13) % 25}`, at);
    }
  }

  expectAgreement(): void {
    const digest = this.leader.digest();
    for (const store of this.stores) {
      expect(store.appliedIndex).toBe(this.leader.appliedIndex);
      expect(store.digest()).toBe(digest);
      expect(store.stats().bytes).toBeLessThanOrEqual(CAPACITY);
    }
  }

  /** After the fallback took over, every write is applied again, room made by eviction. */
  expectServing(lastWrites: number): void {
    const recent = this.outcomes.slice(-lastWrites);
    expect(recent.filter(refused)).toEqual([]);
    expect(this.leader.stats().evictions).toBeGreaterThan(0);
  }
}

function expectFellBack(store: CacheStore, hook: PolicyHook): void {
  const { policy, policyHealth } = store.stats();
  expect(policy).toBe('lru');
  expect(policyHealth.configured).toMatch(/^\.\/broken\//);
  expect(policyHealth.failures[hook]).toBeGreaterThan(0);
  expect(policyHealth.fallbackReason).toMatch(new RegExp(`^${hook}: `));
}

/** One warning per replica that dropped its plugin, however often the hook was called. */
function expectLoggedOnce(plugin: LoadedPlugin, replicas: number, hook: PolicyHook): void {
  expect(plugin.logs).toHaveLength(replicas);
  for (const line of plugin.logs)
    expect(line).toMatchObject({ level: 40, hook, dropped: 'fifo', active: 'lru' });
}

describe('a plugin that fails in a hook', () => {
  // hook, calls that work first, replicas that call it (victims and rebuild: the leader's)
  const cases: [PolicyHook, number, number][] = [
    ['attach', 0, 3],
    ['onInsert', 12, 3],
    ['onUpdate', 3, 3],
    ['onAccess', 10, 3],
    ['onRemove', 5, 3],
    ['victims', 4, 1],
    ['rebuild', 1, 1],
  ];
  for (const how of ['throw', 'reject'] as const)
    it.each(cases)(
      `${how}s in %s after %i calls: replicas agree, LRU takes over on the %i that called it`,
      async (hook, after, replicas) => {
        const plugin = await loadBroken('throwing-policy.ts', { hook, after, how });
        const shard = new ThreeReplicas(plugin);
        shard.run(120);
        shard.expectAgreement();
        shard.expectServing(30);
        for (const store of shard.stores.slice(0, replicas)) expectFellBack(store, hook);
        for (const store of shard.stores.slice(replicas))
          expect(store.stats().policyHealth.fallbackReason).toBe('');
        expectLoggedOnce(plugin, replicas, hook);
      },
    );

  it('whose createPolicy fails for a later shard: that store starts with LRU', async () => {
    // One policy is made at load (the node's start check), one for the first store.
    const plugin = await loadBroken('throwing-policy.ts', { hook: 'createPolicy', after: 2 });
    const shard = new ThreeReplicas(plugin);
    shard.run(60);
    shard.expectAgreement();
    expect(shard.leader.stats().policy).toBe('fifo');
    for (const store of shard.stores.slice(1)) {
      expect(store.stats().policy).toBe('lru');
      expect(store.stats().policyHealth.failures.createPolicy).toBe(1);
    }
  });
});

describe('a plugin whose victims are bad', () => {
  it.each([
    'absent',
    'duplicate',
    'keys',
    'fraction',
    'endless',
    'not-iterable',
    'async',
    'throws-midway',
  ])('%s: nothing invalid is evicted, the write still gets its room from LRU', async (kind) => {
    const plugin = await loadBroken('bad-victims.ts', { kind, after: 3 });
    const shard = new ThreeReplicas(plugin);
    shard.run(80);
    shard.expectAgreement();
    // The walk that went wrong was finished by the fallback: no write was refused as full.
    expect(shard.outcomes.filter(refused)).toEqual([]);
    expectFellBack(shard.leader, 'victims');
    expect(shard.leader.stats().policyHealth.failures.victims).toBe(1);
    for (const store of shard.stores.slice(1)) expect(store.stats().policy).toBe('fifo');
  });

  it('naming the key being written is no failure: the store skips it', async () => {
    // FIFO names the oldest key first; overwriting it with a larger value needs room.
    const plugin = await loadBroken('bad-victims.ts', { after: Number.MAX_SAFE_INTEGER });
    const shard = new ThreeReplicas(plugin);
    for (let i = 0; i < 10; i++) shard.write({ op: 'set', key: `k${i}`, value: VALUE }, i);
    shard.write({ op: 'set', key: 'k0', value: new Uint8Array(VALUE.byteLength + 30) }, 20);
    shard.expectAgreement();
    expect(shard.outcomes.at(-1)?.status).toBe('applied');
    expect(shard.leader.get('k0', 21)?.byteLength).toBe(VALUE.byteLength + 30);
    expect(shard.leader.get('k1', 21)).toBeUndefined();
    expect(shard.leader.stats()).toMatchObject({ policy: 'fifo', evictions: 1 });
  });
});

describe('a slow plugin', () => {
  it('has each victims walk cut at its budget, and is dropped after three in a row', async () => {
    const plugin = await loadBroken('slow-policy.ts', { delayMs: 30, after: 2 }, 10);
    const shard = new ThreeReplicas(plugin);
    shard.run(60);
    shard.expectAgreement();
    shard.expectServing(30);
    expectFellBack(shard.leader, 'victims');
    expect(shard.leader.stats().policyHealth).toMatchObject({
      slowWalks: 3,
      fallbackReason: expect.stringMatching(/3 victims walks in a row took over 10 ms/),
    });
  });
});
