import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BulkheadFullError,
  CacheClient,
  CapacityExceededError,
  CircuitOpenError,
  ClientClosedError,
  type ClusterMapView,
  ClusterUnreachableError,
  InvalidArgumentError,
  NotLeaderError,
  PartialFailureError,
  RaftcacheError,
  UnavailableError,
} from '../../src/client/index.ts';
import { keySlot } from '../../src/shard/key-slot.ts';
import { FrameCountingProxy } from '../support/frame-counting-proxy.ts';
import { freePort, ProcessCluster } from '../support/node-processes.ts';
import { eventually } from '../support/until.ts';

// Eight shards of 512 KiB each (4 MiB shared by the eight replicas a node holds).
let cluster: ProcessCluster;
let cache: CacheClient;

beforeAll(async () => {
  cluster = await ProcessCluster.start({ args: ['--shards', '8', '--capacity-bytes', '4MiB'] });
  cache = new CacheClient({ seeds: [cluster.addresses[0]] });
  // The first write waits out the processes' start and the first elections.
  await cache.set('warm-up', 'x', { deadlineMs: 30_000 });
}, 60_000);

afterAll(async () => {
  await cache?.close();
  cluster?.stop();
});

/** The rejection of `promise`, which must reject with one of the SDK's errors. */
async function rejection(promise: Promise<unknown>): Promise<RaftcacheError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(RaftcacheError);
    return error as RaftcacheError;
  }
  return expect.fail('expected a rejection');
}

function shardOf(map: ClusterMapView, key: string): number {
  const slot = keySlot(key);
  const shard = map.shards.find((s) => s.slots.some((r) => r.first <= slot && slot <= r.last));
  if (!shard) throw new Error(`slot ${slot} has no shard`);
  return shard.id;
}

/** A key, the address of its shard's leader (by the cluster map) and of another node. */
async function keyAndLeader(prefix: string) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const key = `${prefix}-${attempt}`;
    await cache.set(key, 'x');
    const map = await cache.clusterMap();
    const leaderId = map.shards.find((s) => s.id === shardOf(map, key))?.leader;
    const leader = map.nodes.find((n) => n.id === leaderId);
    const other = map.nodes.find((n) => n.id !== leaderId);
    if (leader && other) return { key, leader: leader.address, other: other.address };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('no shard leader known');
}

describe('the SDK against three node processes: every call', () => {
  it('set and get: strings, Buffers and Uint8Arrays; versions grow; entries carry their expiry', async () => {
    const first = await cache.set('s:text', 'héllo');
    expect(first.applied).toBe(true);
    expect(first.version).toBeGreaterThan(0);
    expect(await cache.getString('s:text')).toBe('héllo');
    expect(await cache.get('s:text')).toEqual(Buffer.from('héllo', 'utf8'));

    await cache.set('s:bytes', Buffer.from([0, 255, 1]));
    expect(await cache.get('s:bytes')).toEqual(Buffer.from([0, 255, 1]));
    await cache.set('s:array', new Uint8Array([7, 8]));
    expect(await cache.get('s:array')).toEqual(Buffer.from([7, 8]));

    const second = await cache.set('s:text', 'again');
    expect(second.version).toBeGreaterThan(first.version as number);
    const entry = await cache.getEntry('s:text');
    expect(entry?.version).toBe(second.version);
    expect(entry?.expiresAtMs).toBeUndefined();
    expect(Math.abs((entry?.createdAtMs ?? 0) - Date.now())).toBeLessThan(10_000);

    const before = Date.now();
    await cache.set('s:ttl', 'v', { ttlMs: 60_000 });
    const expiring = await cache.getEntry('s:ttl');
    expect(expiring?.expiresAtMs).toBeGreaterThanOrEqual(before + 59_000);
    expect(expiring?.expiresAtMs).toBeLessThanOrEqual(Date.now() + 60_000);
    const left = await cache.ttl('s:ttl');
    expect(left).toBeGreaterThan(50_000);
    expect(left).toBeLessThanOrEqual(60_000);

    expect(await cache.get('s:missing')).toBeUndefined();
    expect(await cache.getEntry('s:missing')).toBeUndefined();
    expect(await cache.getString('s:missing', { consistency: 'lease' })).toBeUndefined();
  });

  it('conditions that do not hold are results, not errors: ifAbsent, ifPresent, ifVersion, keepTtl', async () => {
    expect((await cache.set('c:k', 'a', { ifPresent: true })).applied).toBe(false);
    const created = await cache.set('c:k', 'a', { ifAbsent: true });
    expect(created.applied).toBe(true);
    expect(await cache.set('c:k', 'b', { ifAbsent: true })).toEqual({
      applied: false,
      version: undefined,
    });
    const swapped = await cache.set('c:k', 'b', { ifVersion: created.version });
    expect(swapped.applied).toBe(true);
    expect((await cache.set('c:k', 'c', { ifVersion: created.version })).applied).toBe(false);
    expect(await cache.getString('c:k')).toBe('b');

    await cache.set('c:ttl', 'a', { ttlMs: 60_000 });
    await cache.set('c:ttl', 'b', { keepTtl: true });
    expect(await cache.ttl('c:ttl')).toBeGreaterThan(50_000);
    await cache.set('c:ttl', 'c');
    expect(await cache.ttl('c:ttl')).toBeNull();
  });

  it('del, expire, persist and ttl', async () => {
    await cache.mset({ 'd:a': '1', 'd:b': '2', 'd:c': '3' });
    expect(await cache.del(['d:a', 'd:b', 'd:missing'])).toBe(2);
    expect(await cache.del('d:c')).toBe(1);
    expect(await cache.del('d:c')).toBe(0);
    expect(await cache.del([])).toBe(0);

    await cache.set('e:k', 'v');
    expect(await cache.expire('e:k', 60_000)).toBe(true);
    expect(await cache.ttl('e:k')).toBeGreaterThan(50_000);
    expect(await cache.persist('e:k')).toBe(true);
    expect(await cache.ttl('e:k')).toBeNull();
    expect(await cache.expire('e:missing', 1_000)).toBe(false);
    expect(await cache.persist('e:missing')).toBe(false);
    expect(await cache.ttl('e:missing')).toBeUndefined();
    expect(await cache.expire('e:k', 0)).toBe(true);
    expect(await cache.get('e:k')).toBeUndefined();

    await cache.set('e:short', 'v', { ttlMs: 1_000 });
    expect(await cache.ttl('e:short')).toBeGreaterThan(0);
    // Real node processes on the real clock: wait for the expiry, not a guess at its time.
    await eventually(async () => ((await cache.get('e:short')) === undefined ? true : undefined));
  });

  it('mset and mget over several shards, one request per shard; a hash tag keeps keys on one shard', async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `m:${i}`);
    const written = await cache.mset(Object.fromEntries(keys.map((k) => [k, `v-${k}`])));
    expect(written.shards.length).toBeGreaterThan(1);
    expect(written.shards.flatMap((s) => s.keys).sort()).toEqual([...keys].sort());
    for (const shard of written.shards) expect(shard.version).toBeGreaterThan(0);

    const values = await cache.mget([...keys, 'm:missing']);
    expect(values.map((v) => v?.toString())).toEqual([...keys.map((k) => `v-${k}`), undefined]);

    const tagged = await cache.mset(
      [
        ['user:{42}:name', 'Ada'],
        ['user:{42}:mail', Buffer.from('ada@example.org')],
      ],
      { ttlMs: 60_000 },
    );
    expect(tagged.shards).toHaveLength(1);
    expect(await cache.ttl('user:{42}:mail')).toBeGreaterThan(50_000);
    expect((await cache.mget(['user:{42}:mail', 'user:{42}:name'])).map(String)).toEqual([
      'ada@example.org',
      'Ada',
    ]);
    expect(await cache.mget([])).toEqual([]);
    expect(await cache.mset({})).toEqual({ shards: [] });
  });

  it('MGET and DEL of more keys in one shard than a request may name go as several requests; MSET stays one atomic request', async () => {
    const keys = Array.from({ length: 1_200 }, (_, i) => `{many}${i}`);
    const pairs = keys.map((key): [string, string] => [key, `v${key}`]);
    const tooMany = await rejection(cache.mset(pairs.slice(0, 1_001)));
    expect(tooMany).toBeInstanceOf(InvalidArgumentError);
    expect(await cache.get(keys[0])).toBeUndefined();

    for (const half of [pairs.slice(0, 600), pairs.slice(600)])
      expect((await cache.mset(half)).shards).toHaveLength(1);
    const values = await cache.mget([...keys, '{many}missing']);
    expect(values.map((v) => v?.toString())).toEqual([...keys.map((k) => `v${k}`), undefined]);
    expect(await cache.del([...keys, '{many}missing'])).toBe(1_200);
    expect(await cache.mget(keys.slice(0, 3))).toEqual([undefined, undefined, undefined]);
  });

  it('a multi-shard write of which one shard fails reports each shard, and that shard applied nothing', async () => {
    const big = Buffer.alloc(600 << 10, 1); // larger than a 512 KiB shard
    const error = await rejection(
      cache.mset({ '{p1}big': big, '{p1}small': 'x', '{p2}other': 'y', '{p3}other': 'z' }),
    );
    expect(error).toBeInstanceOf(PartialFailureError);
    const { shards } = error as PartialFailureError;
    const failed = shards.filter((s) => !s.ok);
    expect(failed).toHaveLength(1);
    expect(failed[0].keys).toEqual(['{p1}big', '{p1}small']);
    expect(failed[0].ok ? undefined : failed[0].error).toBeInstanceOf(CapacityExceededError);
    expect(shards.filter((s) => s.ok).flatMap((s) => s.keys)).toEqual(
      expect.arrayContaining(['{p2}other', '{p3}other']),
    );
    // Atomic within the shard: the small pair of the failed shard is not there either.
    expect(await cache.mget(['{p1}small', '{p2}other', '{p3}other'])).toEqual([
      undefined,
      Buffer.from('y'),
      Buffer.from('z'),
    ]);
  });

  it('the cluster map and every node statistics', async () => {
    const map = await cache.clusterMap();
    expect(map.slotCount).toBe(16384);
    expect(map.nodes.map((n) => n.address).sort()).toEqual([...cluster.addresses].sort());
    expect(map.shards).toHaveLength(8);
    const slots = map.shards.flatMap((s) => s.slots).reduce((n, r) => n + r.last - r.first + 1, 0);
    expect(slots).toBe(16384);
    for (const shard of map.shards) {
      expect(shard.replicas).toHaveLength(3);
      expect(map.nodes.map((n) => n.id)).toContain(shard.leader);
    }
    const stats = await cache.stats();
    expect(stats).toHaveLength(3);
    for (const node of stats) {
      if (!('shards' in node)) return expect.fail(`${node.nodeId}: ${node.error.message}`);
      expect(node.shards).toHaveLength(8);
      expect(node.shards.reduce((n, s) => n + s.keys, 0)).toBeGreaterThan(40);
      expect(node.shards.every((s) => s.capacityBytes === 512 << 10)).toBe(true);
      for (const shard of node.shards) {
        expect(shard).toMatchObject({
          state: 'running',
          failure: '',
          eviction: { configured: 'lru', active: 'lru', fallbackReason: '', slowVictimWalks: 0 },
        });
        expect(['leader', 'follower']).toContain(shard.role);
      }
    }
  });

  it('stale reads are spread over every replica of the shard, which answer them themselves', async () => {
    await cache.set('spread', 'out');
    const hitsByNode = async () => {
      const shard = (await cache.clusterMap()).shards.find((s) =>
        s.slots.some((r) => r.first <= keySlot('spread') && keySlot('spread') <= r.last),
      );
      return new Map(
        (await cache.stats()).map((node) => [
          node.nodeId,
          'shards' in node ? (node.shards.find((s) => s.shardId === shard?.id)?.hits ?? 0) : 0,
        ]),
      );
    };
    const before = await hitsByNode();
    for (let i = 0; i < 30; i++)
      expect(await cache.getString('spread', { consistency: 'stale' })).toBe('out');
    const after = await hitsByNode();
    const servedBy = [...after].filter(([node, hits]) => hits > (before.get(node) ?? 0));
    expect(servedBy).toHaveLength(3);
  });

  it('unary mode (for debugging) serves the same calls over one gRPC call each', async () => {
    const unary = new CacheClient({ seeds: cluster.addresses, mode: 'unary' });
    try {
      expect((await unary.set('u:k', 'v', { ttlMs: 60_000 })).applied).toBe(true);
      expect(await unary.getString('u:k')).toBe('v');
      expect(await unary.ttl('u:k')).toBeGreaterThan(50_000);
      await unary.mset({ 'u:a': '1', 'u:b': '2', 'u:c': '3' });
      expect((await unary.mget(['u:a', 'u:b', 'u:c', 'u:x'])).map((v) => v?.toString())).toEqual([
        '1',
        '2',
        '3',
        undefined,
      ]);
      expect(await unary.del(['u:a', 'u:b', 'u:c'])).toBe(3);
      expect(await unary.expire('u:k', 0)).toBe(true);
      expect(unary.metrics.pipelineWrites).toBe(0);
    } finally {
      await unary.close();
    }
  });
});

describe('the SDK: bad input and failures as typed errors', () => {
  it('bad input is refused with InvalidArgumentError naming the problem', async () => {
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => cache.set('', 'x'), /non-empty/],
      [() => cache.set('k'.repeat(2000), 'x'), /limit is 1024/],
      [() => cache.set('k', Buffer.alloc((1 << 20) + 1)), /limit is 1048576/],
      [
        () => cache.set('k', 42 as unknown as string),
        /Buffer, a Uint8Array or a string, not number 42/,
      ],
      [() => cache.get(42 as unknown as string), /key must be a string/],
      [() => cache.set('k', 'v', { ttlMs: -5 }), /ttlMs must be an integer of at least 0/],
      [() => cache.set('k', 'v', { ttlMs: 1.5 }), /ttlMs/],
      [
        () => cache.set('k', 'v', { keepTtl: true, ttlMs: 1_000 }),
        /keep_ttl keeps the current expiry: it takes no ttl_ms/,
      ],
      [() => cache.set('k', 'v', { ifAbsent: true, ifPresent: true }), /exclude each other/],
      [() => cache.set('k', 'v', { ifVersion: 0 }), /ifVersion/],
      [() => cache.get('k', { consistency: 'eventual' as 'stale' }), /consistency must be/],
      [() => cache.get('k', { deadlineMs: 0 }), /deadlineMs/],
      [() => cache.mget('k' as unknown as string[]), /keys must be an array/],
      [() => cache.mset([['k']] as unknown as [string, string][]), /not a \[key, value\] pair/],
      [() => cache.mset(null as unknown as Record<string, string>), /mset takes/],
      [() => cache.expire('k', Number.NaN), /ttlMs/],
    ];
    for (const [call, message] of cases) {
      const error = await rejection(call());
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toMatch(message);
    }
    for (const options of [
      { seeds: [] },
      { seeds: ['no-port'] },
      { seeds: 'localhost:1' as unknown as string[] },
      { seeds: ['127.0.0.1:1'], mode: 'grpc' as 'unary' },
      { seeds: ['127.0.0.1:1'], resilience: { maxConcurrency: 0 } },
    ])
      expect(() => new CacheClient(options)).toThrow(InvalidArgumentError);
  });

  it('an entry larger than its shard is CapacityExceededError', async () => {
    const error = await rejection(cache.set('huge', Buffer.alloc(600 << 10)));
    expect(error).toBeInstanceOf(CapacityExceededError);
    expect(error.code).toBe('RESOURCE_EXHAUSTED');
    expect(error.message).toMatch(/can never fit/);
  });

  it('no seed answering is ClusterUnreachableError; a closed client, ClientClosedError', async () => {
    const lonely = new CacheClient({ seeds: [`127.0.0.1:${await freePort()}`], deadlineMs: 300 });
    const error = await rejection(lonely.get('k'));
    expect(error).toBeInstanceOf(ClusterUnreachableError);
    expect(error.message).toMatch(/no node answered for the cluster map/);
    await lonely.close();
    expect(await rejection(lonely.get('k'))).toBeInstanceOf(ClientClosedError);
  });

  it('a full bulkhead refuses the calls beyond its limit and queue with BulkheadFullError', async () => {
    const narrow = new CacheClient({
      seeds: cluster.addresses,
      resilience: { maxConcurrency: 1, maxQueued: 1 },
    });
    try {
      await narrow.connect();
      const outcomes = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => narrow.set(`b:${i}`, 'v')),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(2);
      for (const o of outcomes.filter((o) => o.status === 'rejected')) {
        expect(o.reason).toBeInstanceOf(BulkheadFullError);
        expect(o.reason.message).toMatch(/1 running and 1 waiting/);
      }
    } finally {
      await narrow.close();
    }
  });

  it('redirects are followed a bounded number of times: a node that keeps naming a leader it cannot be is NotLeaderError', async () => {
    const { key, leader, other } = await keyAndLeader('redirect');
    // Dialling the leader reaches another node, which names the leader again and again.
    const misled = new CacheClient({
      seeds: cluster.addresses,
      addressMap: { [leader]: other },
      deadlineMs: 800,
    });
    try {
      const error = await rejection(misled.get(key));
      expect(error).toBeInstanceOf(NotLeaderError);
      expect((error as NotLeaderError).leader).toBe(leader);
      expect(misled.metrics.retries).toBeGreaterThan(0);
    } finally {
      await misled.close();
    }
  });

  it('a node that cannot be reached opens its circuit: calls to it then fail at once with CircuitOpenError, while other nodes answer', async () => {
    const { key, leader } = await keyAndLeader('breaker');
    const cutOff = new CacheClient({
      seeds: cluster.addresses.filter((a) => a !== leader),
      addressMap: { [leader]: `127.0.0.1:${await freePort()}` },
      // One attempt per call, so that each call meets the node once.
      resilience: { maxAttempts: 1, breakerThreshold: 3, halfOpenAfterMs: 30_000 },
    });
    try {
      for (let i = 0; i < 3; i++) {
        const error = await rejection(cutOff.get(key));
        expect(error).toBeInstanceOf(UnavailableError);
        expect(error.message).toMatch(/cannot reach .*ECONNREFUSED/);
      }
      const open = await rejection(cutOff.get(key));
      expect(open).toBeInstanceOf(CircuitOpenError);
      expect((open as CircuitOpenError).address).toBe(leader);
      // The circuit is the node's own: the other nodes answer.
      const stats = await cutOff.stats({ deadlineMs: 1_000 });
      expect(stats.filter((n) => 'shards' in n).map((n) => n.address)).toEqual(
        cluster.addresses.filter((a) => a !== leader),
      );
      expect(stats.find((n) => n.address === leader)).toMatchObject({
        error: expect.any(RaftcacheError),
      });
    } finally {
      await cutOff.close();
    }
  });
});

describe('auto-pipelining', () => {
  it('requests issued together leave together: at 64 in flight, far fewer HTTP/2 DATA frames than requests', async () => {
    const proxies = await Promise.all(cluster.addresses.map((a) => FrameCountingProxy.start(a)));
    const addressMap = Object.fromEntries(cluster.addresses.map((a, i) => [a, proxies[i].address]));
    const run = async (mode: 'pipeline' | 'unary', total: number) => {
      // Frames are counted here, not latency: a loaded machine must not fail it by deadline.
      const client = new CacheClient({
        seeds: cluster.addresses,
        mode,
        addressMap,
        deadlineMs: 30_000,
      });
      await client.connect();
      await client.mget(Array.from({ length: 64 }, (_, i) => `pl:${i}`)); // connections open
      for (const proxy of proxies) proxy.reset();
      let issued = 0;
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (issued < total) {
            const i = issued++;
            if (i % 2 === 0) await client.set(`pl:${i % 500}`, `v${i}`);
            else await client.get(`pl:${(i - 1) % 500}`);
          }
        }),
      );
      const frames = proxies.reduce((n, p) => n + p.dataFrames, 0);
      const metrics = client.metrics;
      await client.close();
      return { framesPerRequest: frames / total, metrics };
    };
    try {
      const pipelined = await run('pipeline', 4_000);
      const unary = await run('unary', 1_000);
      console.log(
        `DATA frames per request at 64 in flight: pipeline ${pipelined.framesPerRequest.toFixed(3)}, unary ${unary.framesPerRequest.toFixed(3)}; ${(pipelined.metrics.pipelinedRequests / pipelined.metrics.pipelineWrites).toFixed(1)} requests per stream write`,
      );
      expect(unary.framesPerRequest).toBeGreaterThanOrEqual(1);
      expect(pipelined.framesPerRequest).toBeLessThan(0.5);
      expect(
        pipelined.metrics.pipelinedRequests / pipelined.metrics.pipelineWrites,
      ).toBeGreaterThan(2);
    } finally {
      await Promise.all(proxies.map((p) => p.close()));
    }
  });
});
