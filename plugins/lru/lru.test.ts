import { describe, it } from 'vitest';
import { conformanceChecks, leastRecentlyUsed } from '../kit/conformance.ts';
import { LruPolicy } from './index.ts';

describe('lru plugin: conformance', () => {
  for (const check of conformanceChecks({
    create: () => new LruPolicy(),
    order: leastRecentlyUsed,
    rebuildOrder: leastRecentlyUsed,
  }))
    it(check.name, check.run);
});
