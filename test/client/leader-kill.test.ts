import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  CacheClient,
  type ClusterMapView,
  OutcomeUnknownError,
  RaftcacheError,
} from '../../src/client/index.ts';
import { keySlot } from '../../src/shard/key-slot.ts';
import { ProcessCluster } from '../support/node-processes.ts';
import { until } from '../support/until.ts';

const SHARDS = 4;
let cluster: ProcessCluster;

beforeAll(async () => {
  cluster = await ProcessCluster.start({ args: ['--shards', String(SHARDS)] });
});

afterAll(() => cluster?.stop());

function shardOf(map: ClusterMapView, key: string): number {
  const slot = keySlot(key);
  return map.shards.find((s) => s.slots.some((r) => r.first <= slot && slot <= r.last))
    ?.id as number;
}

/**
 * The node that leads `key`'s shard now: the one that takes a write of it. (The cluster map's
 * hint can be half a second old, and a test that stops a follower by mistake proves nothing.)
 */
async function leaderNow(key: string) {
  const { address } = await cluster.calls.leaderAt('Set', { key, value: Buffer.from('probe') });
  return cluster.node(address);
}

/** The first key `prefix-<n>` of `shard`. */
function keyOfShard(map: ClusterMapView, prefix: string, shard: number): string {
  for (let n = 0; n < 100_000; n++)
    if (shardOf(map, `${prefix}-${n}`) === shard) return `${prefix}-${n}`;
  throw new Error(`no shard ${shard} in the cluster map`);
}

it('a write that gets no answer before its deadline is OutcomeUnknownError, never success or failure', async () => {
  const client = new CacheClient({ seeds: cluster.addresses });
  try {
    await client.set('warm-up', 'x', { deadlineMs: 30_000 });
    const map = await client.clusterMap();
    const key = keyOfShard(map, 'limbo', 1);
    await client.set(key, 'before');
    const stopped = await leaderNow(keyOfShard(map, 'probe', 1));
    await cluster.signal(stopped, 'SIGSTOP');
    try {
      const write = await client.set(key, 'limbo', { deadlineMs: 500 }).catch((e) => e);
      expect(write).toBeInstanceOf(OutcomeUnknownError);
      expect(write.message).toMatch(/may or may not have applied/);
      // A read changes nothing: it is answered (by a new leader, if one was elected by now)
      // or fails with an error of its own kind.
      const read = await client.getString(key, { deadlineMs: 500 }).catch((e) => e);
      if (read instanceof Error) {
        expect(read).toBeInstanceOf(RaftcacheError);
        expect(read).not.toBeInstanceOf(OutcomeUnknownError);
      } else expect(['before', 'limbo']).toContain(read);
    } finally {
      await cluster.signal(stopped, 'SIGCONT');
    }
    // Unknown means either: the write applied (the node read it after SIGCONT) or it did not.
    expect(['before', 'limbo']).toContain(await client.getString(key, { deadlineMs: 20_000 }));
  } finally {
    await client.close();
  }
}, 60_000);

interface Counter {
  readonly key: string;
  readonly shard: number;
  /** The last acknowledged value and its version. */
  value: number;
  version: number;
  /** A write of it ended with an unknown outcome: it is no longer checked exactly. */
  uncertain: boolean;
}

it('16 clients write and read while the leader of a shard is SIGKILLed: no acknowledged write lost, retried writes applied once, reads never back in time', async () => {
  const clients = Array.from(
    { length: 16 },
    () => new CacheClient({ seeds: cluster.addresses, deadlineMs: 20_000 }),
  );
  await clients[0].set('warm-up', 'x', { deadlineMs: 30_000 });
  const map = await clients[0].clusterMap();
  const violations: string[] = [];
  const otherErrors: string[] = [];
  let unknownOutcomes = 0;
  let killedAt = Number.POSITIVE_INFINITY;
  let ackedOnKilledShardAfterKill = 0;
  /** Clients with a write to the killed shard acknowledged after the kill. */
  const pastTheKill = new Set<number>();
  const killedShard = 1;
  let stop = false;
  // Per client: one counter key per shard, written with compare-and-set from its last
  // acknowledged version. A write applied twice (a retry not recognised) or an acknowledged
  // write lost would make the next compare-and-set fail: each must apply.
  const counters = clients.map((_, c) =>
    // Data shards are numbered from 1 (shard 0 is the metadata group).
    Array.from({ length: SHARDS }, (_, i): Counter => {
      const shard = i + 1;
      const key = keyOfShard(map, `client-${c}-counter-${shard}`, shard);
      return { key, shard, value: 0, version: 0, uncertain: false };
    }),
  );
  // And fresh keys written only-if-absent: a retry applied a second time would answer "not applied".
  const created = clients.map(() => [] as string[]);

  const writeCounters = async (c: number) => {
    for (let i = 0; !stop; i++) {
      const counter = counters[c][i % SHARDS];
      if (counter.uncertain) continue;
      try {
        const next = counter.value + 1;
        const result = await clients[c].set(
          counter.key,
          String(next),
          counter.version ? { ifVersion: counter.version } : { ifAbsent: true },
        );
        if (!result.applied) {
          violations.push(`${counter.key}: compare-and-set to ${next} did not hold`);
          return;
        }
        counter.value = next;
        counter.version = result.version as number;
        if (counter.shard === killedShard && performance.now() > killedAt) {
          ackedOnKilledShardAfterKill++;
          pastTheKill.add(c);
        }
        // Its own write, read back: exactly what was acknowledged, or the read went back in time.
        const entry = await clients[c].getEntry(counter.key);
        if (Number(entry?.value) !== counter.value || entry?.version !== counter.version)
          violations.push(
            `${counter.key}: read ${entry?.value} v${entry?.version} after ${counter.value} v${counter.version} was acknowledged`,
          );
      } catch (error) {
        if (error instanceof OutcomeUnknownError) {
          counter.uncertain = true;
          unknownOutcomes++;
        } else otherErrors.push(`${counter.key}: ${(error as Error).message}`);
      }
    }
  };
  const createKeys = async (c: number) => {
    for (let n = 0; !stop; n++) {
      const key = `client-${c}-created-${n}`;
      try {
        const result = await clients[c].set(key, String(n), { ifAbsent: true });
        if (result.applied) created[c].push(key);
        else violations.push(`${key}: created once, found present (applied twice)`);
      } catch (error) {
        if (error instanceof OutcomeUnknownError) unknownOutcomes++;
        else otherErrors.push(`${key}: ${(error as Error).message}`);
      }
    }
  };
  // Reads of the other clients' counters: what one reader sees of a key never goes back.
  const readOthers = async (c: number) => {
    const seen = new Map<string, number>();
    for (let i = 0; !stop; i++) {
      const counter = counters[(c + 1 + (i % 15)) % 16][i % SHARDS];
      try {
        const value = Number((await clients[c].getString(counter.key)) ?? 0);
        if (value < (seen.get(counter.key) ?? 0))
          violations.push(`${counter.key}: read ${value} after ${seen.get(counter.key)}`);
        seen.set(counter.key, value);
      } catch (error) {
        otherErrors.push(`read ${counter.key}: ${(error as Error).message}`);
      }
    }
  };

  const loops = clients.flatMap((_, c) => [writeCounters(c), createKeys(c), readOthers(c)]);
  const killedCounter = (c: number) => counters[c]?.[killedShard - 1] as Counter;
  /** Waits until `done` holds for every client, or a violation ends the run early. */
  const untilEveryClient = (done: (c: number) => boolean, ms: number) =>
    until(() => (violations.length > 0 || clients.every((_, c) => done(c)) ? true : undefined), ms);
  const stopLoops = async () => {
    stop = true;
    await Promise.all(loops);
  };
  // Killed once every client writes to its shard, so writes are in flight on it.
  await untilEveryClient((c) => killedCounter(c).value > 0, 20_000).catch(async (error) => {
    await stopLoops();
    throw error;
  });
  const victim = await leaderNow(keyOfShard(map, 'probe', killedShard));
  await cluster.signal(victim, 'SIGKILL');
  killedAt = performance.now();
  // Stopped once every client got past the kill on that shard: a write acknowledged by the new
  // leader, or an unknown outcome. The write each had in flight at the kill is settled then,
  // so the unknown outcomes are all counted.
  await untilEveryClient((c) => pastTheKill.has(c) || killedCounter(c).uncertain, 30_000).finally(
    stopLoops,
  );

  const metrics = clients.map((client) => client.metrics);
  const sum = (name: keyof (typeof metrics)[0]) => metrics.reduce((n, m) => n + m[name], 0);
  const acked = counters.flat().reduce((n, counter) => n + counter.value, 0);
  console.log(
    `16 clients, leader of shard ${killedShard} killed: ${acked} counter writes and ${created.flat().length} creations acknowledged (${ackedOnKilledShardAfterKill} on the killed leader's shard after the kill); ${sum('retries')} retries, ${sum('ambiguousRetries')} of writes that may have applied; ${unknownOutcomes} unknown outcomes`,
  );
  expect(violations).toEqual([]);
  expect(otherErrors).toEqual([]);
  expect(unknownOutcomes).toBe(0);
  expect(ackedOnKilledShardAfterKill).toBeGreaterThan(0);
  // Some writes were in flight on the killed leader and were sent again with their write id.
  expect(sum('ambiguousRetries')).toBeGreaterThan(0);

  // Everything acknowledged is there, read by a client that did not write it.
  const reader = new CacheClient({ seeds: cluster.addresses.filter((a) => a !== victim.address) });
  for (const counter of counters.flat()) {
    const entry = await reader.getEntry(counter.key);
    expect({ key: counter.key, value: Number(entry?.value), version: entry?.version }).toEqual({
      key: counter.key,
      value: counter.value,
      version: counter.version,
    });
  }
  const keys = created.flat();
  const values = await reader.mget(keys);
  expect(values.map((v) => v?.toString())).toEqual(keys.map((k) => k.split('-').at(-1)));
  await Promise.all([...clients, reader].map((client) => client.close()));
}, 90_000);
