import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, expect, it } from 'vitest';
import { addMembershipService, MembershipClient } from '../../src/cluster/membership-rpc.ts';
import { LEADER_METADATA_KEY } from '../../src/protocol/metadata.ts';
import { loadConfig } from '../../src/server/config.ts';
import { type RunningNode, startNode } from '../../src/server/node.ts';
import { SharedPort } from '../../src/transport/shared-port.ts';
import { ClusterCalls, freePort } from '../support/node-processes.ts';

const silent = pino({ level: 'silent' });
const running: RunningNode[] = [];

afterAll(async () => {
  await Promise.all(running.map((node) => node.close()));
});

const start = async (id: string, address: string, flags: string[]) => {
  const node = await startNode(
    loadConfig(['--node-id', id, '--listen', address, '--shards', '3', ...flags], {}),
    silent,
  );
  running.push(node);
  return node;
};

const mapAt = async (address: string) => {
  const client = new MembershipClient(address);
  try {
    return (await client.probe()).map;
  } finally {
    client.close();
  }
};

it('founds a cluster whose map lives in the metadata group, and takes in a node joining through a seed', async () => {
  const ids = ['n1', 'n2', 'n3'];
  const addresses = await Promise.all(ids.map(async () => `127.0.0.1:${await freePort()}`));
  const initial = ids.map((id, i) => `${id}=${addresses[i]}`).join(',');
  // The founders wait for each other: they start together, in any order.
  const founders = await Promise.all(
    ids.map((id, i) => start(id, addresses[i], ['--bootstrap', '--initial-nodes', initial])),
  );
  expect(new Set(founders.map((n) => n.clusterId)).size).toBe(1);
  const founding = await mapAt(addresses[0]);
  expect(founding?.nodes.map((n) => n.nodeId)).toEqual(ids);

  const joinerAddress = `127.0.0.1:${await freePort()}`;
  const joiner = await start('n4', joinerAddress, ['--seeds', addresses[2]]);
  expect(joiner.clusterId).toBe(founders[0].clusterId);
  // Every node comes to the same newer map, the joiner in it.
  for (const address of [...addresses, joinerAddress]) {
    await expect
      .poll(async () => (await mapAt(address))?.nodes.map((n) => n.nodeId), { timeout: 5_000 })
      .toEqual([...ids, 'n4']);
  }
  // The joiner holds no replica yet: it sends a client to a node of the key's shard.
  const calls = new ClusterCalls(() => [joinerAddress, ...addresses]);
  const { reply } = await calls.leaderAt('Set', { key: 'via-joiner', value: Buffer.from('v') });
  expect(reply.outcome).toBe('APPLIED');
  const redirect = await calls.at(joinerAddress, 'Get', { key: 'via-joiner' }).catch((e) => e);
  expect(redirect.code).toBe(grpc.status.FAILED_PRECONDITION);
  expect(addresses).toContain(redirect.metadata.get(LEADER_METADATA_KEY)[0]);
  // Its map names each shard's leader, from the hints leaders report to the metadata group.
  type Shard = { shard_id: number; leader: string };
  const leadersSeen = async () => {
    const map = await calls.at(joinerAddress, 'ClusterMap', {}, 'Admin');
    expect(map.nodes.map((n: { node_id: string }) => n.node_id)).toEqual([...ids, 'n4']);
    expect(Number(map.epoch)).toBeGreaterThan(Number(founding?.epoch));
    return map.shards as Shard[];
  };
  await expect
    .poll(async () => (await leadersSeen()).every((s) => ids.includes(s.leader)), {
      timeout: 8_000,
    })
    .toBe(true);
  for (const shard of await leadersSeen()) {
    const leaderMap = await calls.at(
      addresses[ids.indexOf(shard.leader)],
      'ClusterMap',
      {},
      'Admin',
    );
    const own = leaderMap.shards.find((s: Shard) => s.shard_id === shard.shard_id);
    expect(own.leader).toBe(shard.leader);
  }

  // Statistics by scope, gathered by a node that holds no replica itself.
  type Stats = { shard_id: number; node_id: string };
  const stats = (scope: string, target = '') =>
    calls.at(joinerAddress, 'GetStats', { scope, target }, 'Admin');
  const cluster = await stats('CLUSTER');
  expect(cluster.unreachable_nodes).toEqual([]);
  expect(cluster.shards).toHaveLength(9);
  expect(new Set(cluster.shards.map((s: Stats) => s.node_id))).toEqual(new Set(ids));
  const shard = await stats('SHARD', '2');
  expect(shard.shards.map((s: Stats) => s.shard_id)).toEqual([2, 2, 2]);
  expect((await stats('NODE', 'n2')).shards.map((s: Stats) => s.node_id)).toEqual([
    'n2',
    'n2',
    'n2',
  ]);
  expect((await stats('NODE')).shards).toEqual([]);
  for (const [scope, target] of [
    ['NODE', 'nx'],
    ['SHARD', '0'],
    ['SHARD', 'x'],
  ]) {
    await expect(stats(scope, target)).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
  }
}, 30_000);

it('refuses to found a cluster with a founder started with another plan', async () => {
  // A stand-in founder that answers probes as a node started with --shards 5 would.
  const other = new grpc.Server();
  addMembershipService(other, {
    probe: () => ({
      node: {
        nodeId: 'n2',
        address: '127.0.0.1:1',
        region: 'default',
        capacityBytes: 1 << 20,
        process: 'p',
      },
      plan: { dataShards: 5, replicationFactor: 3 },
      map: null,
      introduced: [],
      leaders: [],
    }),
    join: () => Promise.reject(new Error('not founded')),
    reportLeaders: () => Promise.reject(new Error('not founded')),
  });
  const otherPort = await SharedPort.listen('127.0.0.1:0', { grpc: other });
  const otherAddress = `127.0.0.1:${otherPort.port}`;
  const address = `127.0.0.1:${await freePort()}`;
  const initial = `n1=${address},n2=${otherAddress}`;
  try {
    await expect(
      startNode(
        loadConfig(
          ['--node-id', 'n1', '--listen', address, '--shards', '3'].concat([
            '--bootstrap',
            '--initial-nodes',
            initial,
          ]),
          {},
        ),
        silent,
      ),
    ).rejects.toThrow(/founder n2 was started with --shards 5 .* start all alike/);
  } finally {
    otherPort.close();
    other.forceShutdown();
  }
});
