// The operator's view: three real node processes started with a broken third-party plugin
// named by path in `--eviction` (it throws in onInsert from its 21st call). Writes past the
// capacity keep being answered, every replica reports over gRPC `GetStats` that its plugin
// was dropped for LRU and why, and the replicas' digests agree at one applied index.
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ProcessCluster } from '../support/node-processes.ts';

const PLUGIN = path.join(import.meta.dirname, 'broken', 'throwing-policy.ts');

let cluster: ProcessCluster;

beforeAll(async () => {
  cluster = await ProcessCluster.start({
    args: ['--shards', '1', '--capacity-bytes', '1MiB', '--eviction', PLUGIN],
  });
});

afterAll(() => cluster.stop());

// biome-ignore lint/suspicious/noExplicitAny: replies as proto-loader decodes them
type ShardStats = any;

/** The data shard's replicas, once all three report one applied index. */
async function replicasAtOneIndex(): Promise<ShardStats[]> {
  const deadline = performance.now() + 15_000;
  for (;;) {
    const replicas = (
      await Promise.all(
        cluster.addresses.map((address) =>
          cluster.calls.shardStats(address, { stateDigest: true }),
        ),
      )
    ).flat();
    if (replicas.length === 3 && new Set(replicas.map((r) => r.applied_index)).size === 1)
      return replicas;
    if (performance.now() > deadline) expect.fail('replicas never reached one applied index');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

it('a plugin that throws in onInsert: the shard keeps serving, STATS shows the fallback', async () => {
  const value = Buffer.alloc(10_240, 7);
  // 1.5 MiB into a 1 MiB shard: most writes evict, all of them after the plugin broke.
  for (let i = 0; i < 150; i++) await cluster.calls.leader('Set', { key: `k${i}`, value });
  expect((await cluster.calls.leader('Get', { key: 'k149' })).found).toBe(true);

  const replicas = await replicasAtOneIndex();
  expect(new Set(replicas.map((r) => r.state_digest)).size).toBe(1);
  for (const replica of replicas) {
    expect(Number(replica.evictions)).toBeGreaterThan(0);
    expect(replica.eviction).toMatchObject({
      active: 'lru',
      configured: PLUGIN,
      fallback_reason: 'onInsert: PluginBugError: onInsert is broken (call 21)',
      slow_victim_walks: '0',
    });
    expect(Number(replica.eviction.failures.onInsert)).toBe(1);
    expect(Number(replica.eviction.failures.victims)).toBe(0);
  }
}, 60_000);
