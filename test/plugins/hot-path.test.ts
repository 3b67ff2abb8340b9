// A GET is one `onAccess`: the built-in plugins must not allocate there (no object per hit,
// no growth of their typed arrays once sized), nor the guard the store calls them through.
import { describe, expect, it } from 'vitest';
import { measureAllocation } from '../../bench/support/allocation.ts';
import { ModelTable } from '../../plugins/kit/model-table.ts';
import { LfuPolicy } from '../../plugins/lfu/index.ts';
import { LruPolicy } from '../../plugins/lru/index.ts';
import { TtlPolicy } from '../../plugins/ttl/index.ts';
import type { EvictionPolicy } from '../../src/cache/eviction-policy.ts';
import { GuardedPolicy } from '../../src/cache/policy-guard.ts';

const ENTRIES = 10_000;
const HITS = 200_000;

describe.each([
  ['lru', () => new LruPolicy()],
  ['lfu', () => new LfuPolicy()],
  ['ttl', () => new TtlPolicy()],
  ['lru behind the store guard', () => new GuardedPolicy({ create: () => new LruPolicy() })],
] as [string, () => EvictionPolicy][])('%s plugin', (_, create) => {
  it('allocates nothing per hit', () => {
    const policy = create();
    const table = new ModelTable();
    table.attach(policy);
    for (let i = 0; i < ENTRIES; i++) table.insert(`k${i}`, 100, i % 3 === 0 ? 1e9 + i : 0);
    const handles = Int32Array.from(table.handles());
    // Warm the JIT first, so that compiling is not counted.
    const hit = (count: number) => {
      for (let i = 0; i < count; i++) policy.onAccess(handles[(i * 7919) % ENTRIES]);
    };
    hit(HITS);
    const { allocatedBytes } = measureAllocation(() => hit(HITS));
    // A few KB of slack for the engine's own bookkeeping; one object per hit would be MBs.
    expect(allocatedBytes).toBeLessThan(64 * 1024);
  });
});
