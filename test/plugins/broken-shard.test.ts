// A broken plugin in a real shard: three multi-raft hosts over the in-memory network, each
// replica with its own copy of a plugin loaded by path through the composition root. Before
// the guard, a hook that threw inside apply threw on every replica and the shard died on
// all nodes; now the shard keeps serving, its replicas agree (equal digests at equal applied
// index), and each replica's STATS shows its policy fell back and what failed.
import { afterEach, describe, expect, it } from 'vitest';
import type { PolicyHook } from '../../src/cache/policy-guard.ts';
import { shardStatsReply } from '../../src/server/cache-service.ts';
import type { MultiRaftHost } from '../../src/shard/multi-raft-host.ts';
import { HostCluster, keyOf, NODES } from '../shard/host-cluster.ts';
import { until } from '../support/until.ts';
import { loadBroken } from './broken-support.ts';

const SHARD = 1;
const VALUE = new Uint8Array(300);

let cluster: HostCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

/** The shard's leader now (it may change under load: ask again after a refusal). */
async function leaderOf(c: HostCluster): Promise<MultiRaftHost> {
  return c.host(await until(() => c.leaderOf(SHARD), 10_000));
}

/**
 * Writes past the capacity (evicting) and reads, on the leader and, stale, on every
 * replica. Returns the status of each of the last `tail` writes.
 */
async function workload(c: HostCluster, writes: number, tail: number): Promise<string[]> {
  const statuses: string[] = [];
  for (let i = 0; i < writes; i++) {
    const key = keyOf((await leaderOf(c)) as MultiRaftHost, SHARD, `w${i % 40}-`);
    const status = await (await leaderOf(c))
      .set({ op: 'set', key, value: VALUE })
      .then((outcome) => outcome.status)
      .catch((error: { code?: string }) => String(error.code));
    statuses.push(status);
    if (i % 3 === 0) {
      await (await leaderOf(c)).get(key).catch(() => undefined);
      for (const node of NODES) await c.host(node).get(key, { consistency: 'stale' });
    }
  }
  return statuses.slice(-tail);
}

/** Every replica's digest, taken in one turn once all have applied the same index. */
async function digestsAtOneIndex(c: HostCluster): Promise<string[]> {
  return until(() => {
    const indexes = NODES.map((node) => c.host(node).stats(SHARD).appliedIndex);
    if (new Set(indexes).size !== 1) return undefined;
    return NODES.map((node) => c.host(node).replica(SHARD).store.digest());
  }, 10_000);
}

type Case = [file: string, options: object, hook: PolicyHook, where: 'all' | 'leader'];

describe('a broken plugin in a three-replica shard', () => {
  const cases: Case[] = [
    ['throwing-policy.ts', { hook: 'onInsert', after: 10 }, 'onInsert', 'all'],
    ['throwing-policy.ts', { hook: 'onRemove', after: 3, how: 'reject' }, 'onRemove', 'all'],
    ['throwing-policy.ts', { hook: 'onAccess', after: 5 }, 'onAccess', 'all'],
    ['throwing-policy.ts', { hook: 'rebuild', after: 1 }, 'rebuild', 'leader'],
    ['bad-victims.ts', { kind: 'absent', after: 2 }, 'victims', 'leader'],
    ['slow-policy.ts', { delayMs: 40, after: 2 }, 'victims', 'leader'],
  ];

  it.each(cases)(
    '%s %j: keeps serving, replicas agree, STATS shows the fallback',
    async (file, options, hook, where) => {
      const plugin = await loadBroken(file, options, 10);
      const c = new HostCluster({ capacityBytes: 8 << 10, policy: plugin.create });
      cluster = c;
      await c.waitForLeaders();
      const last = await workload(c, 90, 20);
      // Once the fallback took over, every write applies, room made by evictions.
      expect(last.filter((status) => status !== 'applied')).toEqual([]);
      const digests = await digestsAtOneIndex(c);
      expect(new Set(digests).size).toBe(1);

      const leader = await leaderOf(c);
      const evictions = shardStatsReply(leader, SHARD).evictions;
      expect(evictions).toBeGreaterThan(0);
      const fellBack = NODES.filter(
        (node) => shardStatsReply(c.host(node), SHARD).eviction.active === 'lru',
      );
      if (where === 'all') expect(fellBack).toEqual([...NODES]);
      else expect(fellBack).toContain(leader.node);
      for (const node of fellBack) {
        const { eviction } = shardStatsReply(c.host(node), SHARD);
        expect(eviction.configured).toBe(`./broken/${file}`);
        expect(eviction.failures[hook]).toBeGreaterThan(0);
        expect(eviction.fallback_reason).toMatch(new RegExp(`^${hook}: `));
      }
      // Logged once by each replica that dropped its plugin (the other shards have their own).
      expect(plugin.logs.filter((line) => line.shard === SHARD)).toHaveLength(fellBack.length);
    },
    60_000,
  );
});
