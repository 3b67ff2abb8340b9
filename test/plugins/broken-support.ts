// Loads a plugin under test/plugins/broken/ by path, the way a node's `--eviction` does,
// through the composition root (src/server/eviction-plugins.ts), with a logger whose lines
// the test can read.
import { pino } from 'pino';
import type { EvictionPolicy } from '../../src/cache/eviction-policy.ts';
import { evictionPolicyFactory } from '../../src/server/eviction-plugins.ts';

export interface LoadedPlugin {
  readonly create: (shardId: number) => EvictionPolicy;
  /** The JSON lines logged so far. */
  readonly logs: Record<string, unknown>[];
}

export async function loadBroken(
  file: string,
  pluginOptions: object,
  victimsBudgetMs?: number,
): Promise<LoadedPlugin> {
  const logs: Record<string, unknown>[] = [];
  const sink = { write: (line: string) => logs.push(JSON.parse(line)) };
  const create = await evictionPolicyFactory(`./broken/${file}`, {
    baseDir: import.meta.dirname,
    logger: pino({ level: 'info' }, sink),
    clock: () => performance.now(),
    pluginOptions,
    victimsBudgetMs,
  });
  return { create, logs };
}
