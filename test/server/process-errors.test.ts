// Bad input against a cluster of three separate node processes, over plain gRPC: each gets
// the status the .proto documents, and no process crashes or stops serving.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { keySlot } from '../../src/shard/key-slot.ts';
import {
  badRequests,
  expectDocumentedErrors,
  expectRedirectsToTheLeader,
} from '../support/documented-errors.ts';
import { type ClusterCalls, ProcessCluster } from '../support/node-processes.ts';

let cluster: ProcessCluster;
let calls: ClusterCalls;

beforeAll(async () => {
  // 1 MiB per node over 4 shards: 256 KiB per shard, below the 1 MiB value limit, so an
  // entry can be larger than its shard.
  cluster = await ProcessCluster.start({ args: ['--shards', '4', '--capacity-bytes', '1MiB'] });
  calls = cluster.calls;
});

afterAll(() => cluster.stop());

// biome-ignore lint/suspicious/noExplicitAny: replies as proto-loader decodes them
type Reply = any;

/** The shard of a key, routed as a client in another language would: slot, then the map. */
async function shardOfByClusterMap(): Promise<(key: string) => number> {
  const map = await calls.at(cluster.addresses[0], 'ClusterMap', {}, 'Admin');
  return (key) => {
    const slot = keySlot(key);
    return map.shards.find((shard: Reply) =>
      shard.slots.some((range: Reply) => range.first <= slot && slot <= range.last),
    ).shard_id;
  };
}

it('a 3-node cluster of separate processes answers each bad input with the documented error, and keeps serving', async () => {
  await calls.leader('Set', { key: 'warm', value: Buffer.from('up') });
  const [stats] = await calls.shardStats(cluster.addresses[0]);
  const requests = badRequests({
    shardOf: await shardOfByClusterMap(),
    smallShardBytes: Number(stats.capacity_bytes),
  });
  expect(requests.map((r) => r.problem)).toContain('entry larger than its shard');
  await expectDocumentedErrors((method, request) => calls.leader(method, request), requests);

  // Not the leader: the metadata names the node that does lead, and that node answers.
  const leader = await expectRedirectsToTheLeader(cluster.addresses, (address) =>
    calls.at(address, 'Get', { key: 'warm' }),
  );
  expect(cluster.addresses).toContain(leader);

  for (const node of cluster.nodes) {
    expect(node.process.exitCode, node.id).toBeNull();
    expect(node.process.signalCode, node.id).toBeNull();
    const read = await calls.at(node.address, 'Get', { key: 'warm', consistency: 'STALE' });
    expect(Buffer.from(read.entry.value).toString(), node.id).toBe('up');
  }
  expect((await calls.leader('Set', { key: 'after', value: Buffer.from('ok') })).outcome).toBe(
    'APPLIED',
  );
}, 30_000);
