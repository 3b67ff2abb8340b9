// What a client is told when a replica closes under its write, and how a STALE read's bound
// holds on a replica cut off from its leader: three nodes in this process over real gRPC,
// nodes stopped by closing their hosts (each test its own cluster).
import * as grpc from '@grpc/grpc-js';
import { afterEach, expect, it } from 'vitest';
import { UnavailableError } from '../../src/client/errors.ts';
import { CacheClient } from '../../src/client/index.ts';
import { GrpcCluster } from '../support/grpc-cluster.ts';
import { until } from '../support/until.ts';

let cluster: GrpcCluster | undefined;

async function startCluster(): Promise<GrpcCluster> {
  cluster = await GrpcCluster.start({ dataShards: 1 });
  return cluster;
}

afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

it('a write in the log when its replica closes is UNKNOWN (retry with its id); one after is UNAVAILABLE', async () => {
  const c = await startCluster();
  await c.callLeader('Set', { key: 'warm', value: Buffer.from('up') });
  const leader = await c.leaderOf('k');
  const host = c.host(leader);
  const replica = host.replica(host.shardOf('k'));
  // Its followers gone, the leader appends the write but can never commit it.
  for (const node of c.names) if (node !== leader) await c.host(node).close();
  const logged = replica.storage.lastIndex();
  const write = c.call(leader, 'Set', { key: 'k', value: Buffer.from('v') }).then(
    () => undefined,
    (error: grpc.ServiceError) => error,
  );
  await until(() => (replica.storage.lastIndex() > logged ? true : undefined));
  await host.close();
  const error = await write;
  expect(error).toMatchObject({
    code: grpc.status.UNKNOWN,
    details: expect.stringMatching(/may or may not have applied \(its replica closed/),
  });
  // A write arriving once the replica has closed never reaches a log: plainly unavailable.
  await expect(c.call(leader, 'Set', { key: 'k', value: Buffer.from('w') })).rejects.toMatchObject({
    code: grpc.status.UNAVAILABLE,
    details: expect.stringMatching(/has closed/),
  });
});

it('a replica cut off from its leader says how stale it is, and refuses a STALE read bounded tighter', async () => {
  const c = await startCluster();
  const set = await c.callLeader('Set', { key: 'cut', value: Buffer.from('old') });
  const follower = await c.cutOffFollower('cut', Number(set.version), 400);

  const unbounded = await c.call(follower, 'Get', { key: 'cut', consistency: 'STALE' });
  expect(unbounded.found).toBe(true);
  expect(Number(unbounded.staleness.since_leader_contact_ms)).toBeGreaterThan(400);
  expect(Number(unbounded.staleness.applied_index)).toBeGreaterThanOrEqual(Number(set.version));

  for (const [method, request] of [
    ['Get', { key: 'cut' }],
    ['Ttl', { key: 'cut' }],
    ['MGet', { keys: ['cut'] }],
  ] as const) {
    await expect(
      c.call(follower, method, { ...request, consistency: 'STALE', max_staleness_ms: '200' }),
    ).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: expect.stringMatching(/last heard from its leader \d+ ms ago, more than the 200 ms/),
    });
  }
  const loose = await c.call(follower, 'Get', {
    key: 'cut',
    consistency: 'STALE',
    max_staleness_ms: '600000',
  });
  expect(Buffer.from(loose.entry.value).toString()).toBe('old');

  // The SDK passes the bound: no replica is current enough, so it gives up unavailable.
  const client = new CacheClient({ seeds: [c.address(follower)], deadlineMs: 1_500 });
  try {
    await expect(
      client.getString('cut', { consistency: 'stale', maxStalenessMs: 200 }),
    ).rejects.toBeInstanceOf(UnavailableError);
    expect(await client.getString('cut', { consistency: 'stale', maxStalenessMs: 600_000 })).toBe(
      'old',
    );
    await expect(client.getString('cut', { maxStalenessMs: 200 })).rejects.toThrow(
      /bounds stale reads only/,
    );
  } finally {
    await client.close();
  }
});
