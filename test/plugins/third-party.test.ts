// The sample third-party plugin, loaded by path the way a node's config names it, passes the
// same conformance kit as the built-ins.
import { describe, it } from 'vitest';
import { conformanceChecks } from '../../plugins/kit/conformance.ts';
import { loadPolicyFactory } from '../../src/cache/plugin-loader.ts';

const createPolicy = await loadPolicyFactory('./third-party/fifo-policy.ts', {
  baseDir: import.meta.dirname,
});

describe('third-party fifo plugin, loaded by path: conformance', () => {
  for (const check of conformanceChecks({
    create: () => createPolicy(),
    order: (a, b) => a.createdAt - b.createdAt,
    rebuildOrder: (a, b) => a.createdAt - b.createdAt,
  }))
    it(check.name, check.run);
});
