import { describe, expect, it } from 'vitest';
import { conformanceChecks, leastFrequentlyUsed, leastRecentlyUsed } from '../kit/conformance.ts';
import { ModelTable } from '../kit/model-table.ts';
import { LfuPolicy } from './index.ts';

describe('lfu plugin: conformance', () => {
  for (const check of conformanceChecks({
    create: () => new LfuPolicy(),
    order: leastFrequentlyUsed,
    // Newcomers start level with the last victim, not at zero uses: that is the aging.
    orderAfterRemovals: false,
    // A fresh policy knows no counts, only recency.
    rebuildOrder: leastRecentlyUsed,
  }))
    it(check.name, check.run);
});

describe('lfu plugin: aging', () => {
  it('lets a key that was hot long ago fade once the cache has turned over', () => {
    const policy = new LfuPolicy({ span: 16 });
    const table = new ModelTable();
    table.attach(policy);
    const capacity = 10;
    const old = table.insert('old-hot', 1);
    for (let i = 0; i < 10; i++) table.access(old);
    // A new working set, each key read twice, flows through a cache of `capacity` entries.
    let evictedAt = -1;
    for (let i = 0; i < 200 && evictedAt < 0; i++) {
      if (table.size >= capacity) {
        const victim = policy.victims(1)[Symbol.iterator]().next().value as number;
        if (victim === old) evictedAt = i;
        table.remove(victim);
      }
      const handle = table.insert(`new${i}`, 1);
      table.access(handle);
    }
    expect(evictedAt).toBeGreaterThan(capacity);
    expect(evictedAt).toBeGreaterThan(0);
  });

  it('keeps a key that is still hot over one-hit newcomers', () => {
    const policy = new LfuPolicy();
    const table = new ModelTable();
    table.attach(policy);
    const hot = table.insert('hot', 1);
    for (let i = 0; i < 1000; i++) {
      table.access(hot);
      if (table.size >= 10)
        table.remove(policy.victims(1)[Symbol.iterator]().next().value as number);
      table.insert(`scan${i}`, 1);
    }
    expect(table.has(hot)).toBe(true);
    expect(table.key(hot)).toBe('hot');
  });

  it('does O(1) work per hit: the frequency is capped at span - 1 above the floor', () => {
    const policy = new LfuPolicy({ span: 8 });
    const table = new ModelTable();
    table.attach(policy);
    const handle = table.insert('k', 1);
    for (let i = 0; i < 100; i++) table.access(handle);
    expect(policy.frequency(handle)).toBe(7);
  });
});
