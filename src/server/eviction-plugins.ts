// The eviction plugins a node can name, and how it makes each shard's policy. The registry
// of built-ins lives here, at the composition root, so that the cache (src/cache) never
// imports `plugins/`; for the same reason the fallback that takes over from a failing
// plugin, `plugins/lru` (the one LRU), is handed to the store from here.
//
//   const createPolicy = await evictionPolicyFactory('./my-policy.ts', { logger, clock });
//   new MultiRaftHost({ ..., policy: createPolicy });
import type { Logger } from 'pino';
import { LruPolicy } from '../../plugins/lru/index.ts';
import {
  DEFAULT_SLOW_WALKS_TO_FALLBACK,
  DEFAULT_VICTIMS_BUDGET_MS,
  type EvictionPolicy,
  GuardedPolicy,
  InvalidPluginError,
  loadPolicyFactory,
  type PolicyRegistry,
} from '../cache/index.ts';

/** Literal imports, so that a build rewrites them to the emitted `.js` files. */
export const BUILT_IN_PLUGINS: PolicyRegistry = {
  lru: () => import('../../plugins/lru/index.ts'),
  lfu: () => import('../../plugins/lfu/index.ts'),
  ttl: () => import('../../plugins/ttl/index.ts'),
};

export const BUILT_IN_PLUGIN_NAMES: readonly string[] = Object.keys(BUILT_IN_PLUGINS);

export interface EvictionPluginOptions {
  readonly logger: Logger;
  /** Monotonic ms: the clock a victims walk's time budget is measured by. */
  readonly clock: () => number;
  /** Where a relative plugin path starts from (the working directory by default). */
  readonly baseDir?: string | undefined;
  /** The plugin's own options, handed to its `createPolicy`. */
  readonly pluginOptions?: unknown;
  readonly victimsBudgetMs?: number | undefined;
  readonly slowWalksToFallback?: number | undefined;
}

/**
 * Loads the plugin `spec` names (a built-in or a module path) and returns the factory of
 * each shard's policy: the plugin behind the store's guard, with LRU as its fallback. The
 * plugin makes one policy now, so that one that cannot stops the node at start with a
 * typed error (`PluginNotFoundError`, `InvalidPluginError`) rather than at its first shard.
 */
export async function evictionPolicyFactory(
  spec: string,
  options: EvictionPluginOptions,
): Promise<(shardId: number) => EvictionPolicy> {
  const create = await loadPolicyFactory(spec, {
    baseDir: options.baseDir,
    builtIns: BUILT_IN_PLUGINS,
  });
  try {
    create(options.pluginOptions);
  } catch (error) {
    if (error instanceof InvalidPluginError) throw error;
    throw new InvalidPluginError(spec, `createPolicy threw: ${(error as Error)?.message}`);
  }
  const logger = options.logger.child({ plugin: spec });
  return (shardId) =>
    new GuardedPolicy({
      plugin: spec,
      create: () => create(options.pluginOptions),
      fallback: () => new LruPolicy(),
      clock: options.clock,
      victimsBudgetMs: options.victimsBudgetMs ?? DEFAULT_VICTIMS_BUDGET_MS,
      slowWalksToFallback: options.slowWalksToFallback ?? DEFAULT_SLOW_WALKS_TO_FALLBACK,
      // Once per shard replica, when its policy is dropped: the plugin is not called again.
      onFallback: (event) =>
        logger.warn({ shard: shardId, ...event }, 'eviction policy failed and was dropped'),
    });
}
