import { describe, expect, it } from 'vitest';
import {
  conformanceChecks,
  leastFrequentlyUsed,
  leastRecentlyUsed,
  soonestExpiry,
} from '../kit/conformance.ts';
import { ModelTable } from '../kit/model-table.ts';
import { TtlPolicy } from './index.ts';

describe('ttl plugin: conformance (lru fallback)', () => {
  for (const check of conformanceChecks({
    create: () => new TtlPolicy(),
    order: soonestExpiry(leastRecentlyUsed),
    rebuildOrder: soonestExpiry(leastRecentlyUsed),
  }))
    it(check.name, check.run);
});

describe('ttl plugin: conformance (lfu fallback)', () => {
  for (const check of conformanceChecks({
    create: () => new TtlPolicy({ fallback: 'lfu' }),
    order: soonestExpiry(leastFrequentlyUsed),
    orderAfterRemovals: false,
    rebuildOrder: soonestExpiry(leastRecentlyUsed),
  }))
    it(check.name, check.run);
});

describe('ttl plugin: order', () => {
  it('evicts the soonest to expire first, then falls back to LRU for keys without expiry', () => {
    const policy = new TtlPolicy();
    const table = new ModelTable();
    table.attach(policy);
    const a = table.insert('a', 1);
    const later = table.insert('later', 1, 5000);
    const b = table.insert('b', 1);
    const soon = table.insert('soon', 1, 2000);
    const mid = table.insert('mid', 1, 3000);
    table.access(a);
    expect([...policy.victims(1)].map((h) => table.key(h))).toEqual([
      'soon',
      'mid',
      'later',
      'b',
      'a',
    ]);
    // Moving an expiry reorders; dropping it hands the key to the fallback.
    table.update(soon, 1, 9000);
    table.update(mid, 1, 0);
    expect([...policy.victims(1)].map((h) => table.key(h))).toEqual([
      'later',
      'soon',
      'b',
      'a',
      'mid',
    ]);
    table.remove(later);
    expect([...policy.victims(1)]).toEqual([soon, b, a, mid]);
  });
});
