// A replica whose own state breaks (as a bug would break it) trips an invariant: that replica
// stops, alone. Its node serves its other shards; the shard's other replicas serve on.
import * as grpc from '@grpc/grpc-js';
import { afterEach, expect, it } from 'vitest';
import { toStatus } from '../../src/protocol/status.ts';
import { TCP_NODES, TCP_SHARDS, TcpHosts } from '../support/tcp-hosts.ts';
import { until } from '../support/until.ts';
import { bytes, keyOf, text } from './host-cluster.ts';

let cluster: TcpHosts | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

it('fails only the replica whose invariant broke: it says why, and everything else serves', async () => {
  cluster = await TcpHosts.start();
  const c = cluster;
  await c.waitForLeaders();
  const broken = 1;
  const node = c.leaderOf(broken) as string;
  const host = c.host(node);
  const replica = host.replica(broken);
  // A commit index past the end of the log: the next Ready cannot hand out what is not there.
  replica.node.log.committed = replica.node.log.lastIndex() + 100;
  const write = host.set({ op: 'set', key: keyOf(host, broken), value: bytes('x') });
  await expect(write).rejects.toMatchObject({
    code: expect.stringMatching(/REPLICA_FAILED|OUTCOME_UNKNOWN/),
  });

  const stats = host.stats(broken);
  expect(stats).toMatchObject({ state: 'failed', role: 'follower' });
  expect(stats.failure).toMatch(/^InvariantError: /);
  const [logged] = c.log.at(
    'error',
    'replica failed: it stops here, and the node serves its other shards',
  );
  expect(logged).toMatchObject({ node, shard: broken, replica: stats.replicaId });

  // Requests to the failed replica get a typed error, mapped to UNAVAILABLE.
  const refused = await host.get(keyOf(host, broken)).catch((error: unknown) => error);
  expect(refused).toMatchObject({ code: 'REPLICA_FAILED', shardId: broken });
  expect(toStatus(refused, () => undefined).code).toBe(grpc.status.UNAVAILABLE);

  // The shard elects a leader among its other replicas, and every shard takes writes.
  await until(() => (c.leaderOf(broken) !== undefined ? true : undefined), 10_000);
  expect(c.leaderOf(broken)).not.toBe(node);
  for (const shardId of TCP_SHARDS) {
    const leader = c.host(c.leaderOf(shardId) as string);
    const key = keyOf(leader, shardId, 'after-');
    expect((await leader.set({ op: 'set', key, value: bytes('y') })).status).toBe('applied');
    expect(text((await leader.get(key))?.value)).toBe('y');
  }
  // The failed node's other replicas keep following their shards.
  for (const shardId of TCP_SHARDS.filter((id) => id !== broken)) {
    const applied = () => TCP_NODES.map((n) => c.host(n).stats(shardId).appliedIndex);
    await until(() => (new Set(applied()).size === 1 ? true : undefined), 5_000);
    expect(host.stats(shardId).state).toBe('running');
  }
});
