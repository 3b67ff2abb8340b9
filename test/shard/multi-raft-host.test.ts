import { afterEach, describe, expect, it, vi } from 'vitest';
import { LruPolicy } from '../../plugins/lru/index.ts';
import { readSnapshot, snapshotChunks } from '../../src/cache/index.ts';
import { NoLeaderError, NotLeaderError } from '../../src/shard/errors.ts';
import {
  bytes,
  HostCluster,
  keyOf as keyOfShard,
  NODES,
  SHARDS,
  text,
  waitFor,
} from './host-cluster.ts';

let cluster: HostCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

function start(...args: ConstructorParameters<typeof HostCluster>): HostCluster {
  cluster = new HostCluster(...args);
  return cluster;
}

function keyOf(c: HostCluster, shardId: number, prefix?: string): string {
  return keyOfShard(c.host('n1'), shardId, prefix);
}

describe('multi-raft host over the in-memory network', () => {
  it('elects a leader for every shard, then SET and a linearizable GET work on each', async () => {
    const c = start();
    await c.waitForLeaders();
    for (const shardId of SHARDS) {
      const leader = c.host(c.leaderOf(shardId) as string);
      const key = keyOf(c, shardId);
      const outcome = await leader.set({ op: 'set', key, value: bytes(`v${shardId}`) });
      expect(outcome).toMatchObject({ status: 'applied', count: 1 });
      const entry = await leader.get(key);
      expect(text(entry?.value)).toBe(`v${shardId}`);
      expect(text((await leader.get(key, { consistency: 'lease' }))?.value)).toBe(`v${shardId}`);
      expect(await leader.mget([key])).toHaveLength(1);
    }
  });

  it('answers NX, XX and compare-and-set misses as outcomes, not errors', async () => {
    const c = start();
    await c.waitForLeaders();
    const leader = c.host(c.leaderOf(1) as string);
    const key = keyOf(c, 1);
    const first = await leader.set({ op: 'set', key, value: bytes('a') });
    expect(first.status).toBe('applied');
    const nx = await leader.set({ op: 'set', key, value: bytes('b'), condition: 'nx' });
    expect(nx).toEqual({ status: 'not-applied', reason: 'exists' });
    const other = keyOf(c, 1, 'missing');
    const xx = await leader.set({
      op: 'set',
      key: other,
      value: bytes('b'),
      condition: 'xx',
    });
    expect(xx).toEqual({ status: 'not-applied', reason: 'missing' });
    const version = first.status === 'applied' ? first.version : 0;
    const badCas = await leader.set({
      op: 'set',
      key,
      value: bytes('c'),
      ifVersion: version + 1000,
    });
    expect(badCas).toEqual({ status: 'not-applied', reason: 'version-mismatch' });
    const cas = await leader.set({
      op: 'set',
      key,
      value: bytes('d'),
      ifVersion: version,
    });
    expect(cas.status).toBe('applied');
    expect(text((await leader.get(key))?.value)).toBe('d');
  });

  it('refuses a request on a follower with the typed not-leader error naming the leader', async () => {
    const c = start();
    await c.waitForLeaders();
    const leaderNode = c.leaderOf(2) as string;
    const followerNode = NODES.find((node) => node !== leaderNode) as string;
    const follower = c.host(followerNode);
    // The follower learns who leads from the leader's first append.
    await waitFor(() => follower.stats(2).leaderNode === leaderNode);
    const key = keyOf(c, 2);
    const write = follower.set({ op: 'set', key, value: bytes('x') });
    await expect(write).rejects.toBeInstanceOf(NotLeaderError);
    await expect(write).rejects.toMatchObject({ code: 'NOT_LEADER', leaderNode });
    await expect(follower.get(key)).rejects.toMatchObject({ code: 'NOT_LEADER', leaderNode });
    // A stale read is served by the follower itself.
    expect(await follower.get(key, { consistency: 'stale' })).toBeUndefined();
    // It says how old its state may be: the time since it last heard from the leader.
    expect(follower.stats(2).sinceLeaderContactMs).toBeLessThan(1_000);
    expect(c.host(leaderNode).stats(2).sinceLeaderContactMs).toBe(0);
  });

  it('puts the writes of one turn into one log entry', async () => {
    const c = start();
    await c.waitForLeaders();
    const leader = c.host(c.leaderOf(3) as string);
    // Keys sharing a hash tag share a shard.
    const hashTag = keyOf(c, 3, 'tag');
    // One write first, so the leader's own first entry is applied before counting.
    await leader.set({ op: 'set', key: `{${hashTag}}`, value: bytes('') });
    const before = leader.stats(3).appliedIndex;
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        leader.set({ op: 'set', key: `{${hashTag}}${i}`, value: bytes(`${i}`) }),
      ),
    );
    const versions = new Set(outcomes.map((o) => (o.status === 'applied' ? o.version : -1)));
    expect(versions).toEqual(new Set([before + 1]));
    expect(leader.stats(3).appliedIndex).toBe(before + 1);
    expect(
      text(await leader.mget([`{${hashTag}}0`, `{${hashTag}}49`]).then((v) => v[1]?.value)),
    ).toBe('49');
  });

  it('bounds the log behind its snapshots by bytes, not only by entries', async () => {
    const KEEP = 8 << 10;
    const EVERY = 32 << 10;
    const c = start({ snapshotEveryBytes: EVERY, snapshotKeepBytes: KEEP });
    await c.waitForLeaders();
    const leader = c.host(c.leaderOf(1) as string);
    // 120 entries of ~1 KiB: far fewer than the 10,000 between snapshots by count.
    const keys = Array.from({ length: 120 }, (_, i) => keyOf(c, 1, `kb${i}-`));
    for (const [i, key] of keys.entries())
      await leader.set({ op: 'set', key, value: new Uint8Array(1024).fill(i) });
    const applied = leader.stats(1).appliedIndex;
    for (const node of NODES) {
      const replica = c.host(node).replica(1);
      await waitFor(() => replica.store.appliedIndex === applied);
      const log = replica.storage;
      const retained = log
        .entries(log.firstIndex(), log.lastIndex() + 1, Number.POSITIVE_INFINITY)
        .reduce((sum, entry) => sum + entry.data.byteLength, 0);
      expect(log.snapshot().index, node).toBeGreaterThan(0);
      // Some entries stay behind the last snapshot, for a follower slightly behind.
      expect(log.firstIndex(), node).toBeLessThan(log.snapshot().index);
      // Behind the last snapshot at most KEEP; since it, less than EVERY and one entry more.
      expect(retained, node).toBeLessThan(KEEP + EVERY + 2048);
      expect(log.firstIndex(), node).toBeGreaterThan(applied - 40);
    }
    expect((await leader.get(keys[0]))?.value[0]).toBe(0);
  });

  it('gives no leader yet as a typed error before any election', async () => {
    const c = start({ electionTicks: 50 });
    const key = keyOf(c, 1);
    await expect(c.host('n1').set({ op: 'set', key, value: bytes('v') })).rejects.toBeInstanceOf(
      NoLeaderError,
    );
  });

  it('hides an expired key at once, and the leader deletes it on every replica', async () => {
    const c = start();
    await c.waitForLeaders();
    const leader = c.host(c.leaderOf(1) as string);
    const shortLived = keyOf(c, 1, 'ttl');
    const kept = keyOf(c, 1, 'kept');
    await leader.set({ op: 'set', key: shortLived, value: bytes('x'), px: 200 });
    await leader.set({ op: 'set', key: kept, value: bytes('y') });
    expect(text((await leader.get(shortLived))?.value)).toBe('x');
    expect(await leader.ttl(shortLived)).toBeGreaterThan(0);
    expect(await leader.ttl(kept)).toBe(-1);
    c.advanceWallClock(200);
    expect(await leader.get(shortLived)).toBeUndefined();
    expect(await leader.ttl(shortLived)).toBe(-2);
    await waitFor(() =>
      NODES.every((node) => {
        const stats = c.host(node).stats(1);
        return stats.keys === 1 && stats.expirations === 1;
      }),
    );
    expect(text((await leader.get(kept))?.value)).toBe('y');
  });

  it('serves the linearizable reads of one turn with one read index', async () => {
    const c = start();
    await c.waitForLeaders();
    const leader = c.host(c.leaderOf(2) as string);
    const key = keyOf(c, 2);
    await leader.set({ op: 'set', key, value: bytes('shared') });
    const readIndex = vi.spyOn(leader.replica(2).node, 'readIndex');
    const values = await Promise.all(Array.from({ length: 20 }, () => leader.get(key)));
    expect(values.map((entry) => text(entry?.value))).toEqual(new Array(20).fill('shared'));
    expect(readIndex).toHaveBeenCalledTimes(1);
  });

  it('evicts through the log, so every replica holds the same keys within capacity', async () => {
    const c = start({ capacityBytes: 4096, policy: () => new LruPolicy() });
    await c.waitForLeaders();
    const leader = c.host(c.leaderOf(1) as string);
    for (let round = 0; round < 10; round++) {
      const outcomes = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          leader.set({
            op: 'set',
            key: keyOf(c, 1, `evict${round}-${i}-`),
            value: new Uint8Array(100).fill(round),
          }),
        ),
      );
      for (const outcome of outcomes) expect(outcome.status).toBe('applied');
    }
    const stats = leader.stats(1);
    expect(stats.evictions).toBeGreaterThan(0);
    expect(stats.bytes).toBeLessThanOrEqual(4096);
    await waitFor(() =>
      NODES.every((node) => c.host(node).stats(1).appliedIndex === leader.stats(1).appliedIndex),
    );
    const state = (node: string) => readSnapshot(snapshotChunks(c.host(node).replica(1).store));
    for (const node of NODES) expect(state(node)).toEqual(state(NODES[0]));
  });
});
