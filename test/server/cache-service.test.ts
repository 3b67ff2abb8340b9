import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foundingMap, METADATA_SHARD, slotTable } from '../../src/cluster/cluster-map.ts';
import { SeededRandom } from '../../src/raft/random.ts';
import { adminServiceHandlers } from '../../src/server/admin-service.ts';
import { cacheServiceHandlers } from '../../src/server/cache-service.ts';
import { publicApi } from '../../src/server/proto.ts';
import { LEADER_METADATA_KEY } from '../../src/server/status.ts';
import { MultiRaftHost } from '../../src/shard/multi-raft-host.ts';
import { GRPC_SERVER_OPTIONS, SharedPort } from '../../src/transport/shared-port.ts';
import { TcpPeerTransport } from '../../src/transport/tcp-peer-transport.ts';
import {
  badRequests,
  expectDocumentedErrors,
  expectRedirectsToTheLeader,
} from '../support/documented-errors.ts';

/** Three nodes in this process, each one port for peers and the public API, on loopback. */
const names = ['n1', 'n2', 'n3'];
const servers: grpc.Server[] = [];
const ports: SharedPort[] = [];
const hosts: MultiRaftHost[] = [];
const clients = new Map<string, grpc.Client>();
const addresses = new Map<string, string>();

beforeAll(async () => {
  const transports: TcpPeerTransport[] = [];
  // The map of a cluster founded with the three nodes: shards 1 to 3 and the metadata group.
  const founding = foundingMap({
    clusterId: 'test',
    nodes: names.map((nodeId) => ({
      nodeId,
      address: '',
      region: 'local',
      capacityBytes: 4 << 20,
      process: nodeId,
      incarnation: 1,
    })),
    dataShards: 3,
    replicationFactor: 3,
  });
  const map = () => ({
    ...founding,
    nodes: founding.nodes.map((n) => ({ ...n, address: addresses.get(n.nodeId) ?? '' })),
  });
  for (const [i, node] of names.entries()) {
    const server = new grpc.Server(GRPC_SERVER_OPTIONS);
    const transport = new TcpPeerTransport({ node, clusterId: 'test' });
    transports.push(transport);
    const host = new MultiRaftHost({
      node,
      transport,
      placement: founding.shards,
      slotShards: slotTable(founding),
      capacityBytes: 4 << 20,
      clock: { now: () => Date.now(), monotonic: () => performance.now() },
      random: new SeededRandom(i + 1),
    });
    server.addService(publicApi.Admin.service, adminServiceHandlers({ map, host }));
    server.addService(
      publicApi.Cache.service,
      cacheServiceHandlers({
        host,
        addressOf: (n) => addresses.get(n),
      }),
    );
    const port = await SharedPort.listen('127.0.0.1:0', { grpc: server, peers: transport });
    ports.push(port);
    addresses.set(node, `127.0.0.1:${port.port}`);
    servers.push(server);
    hosts.push(host);
  }
  for (const transport of transports) transport.setPeerAddresses(addresses);
  for (const [node, address] of addresses)
    clients.set(node, new publicApi.Cache(address, grpc.credentials.createInsecure()));
});

afterAll(async () => {
  for (const client of clients.values()) client.close();
  await Promise.all(hosts.map((host) => host.close()));
  for (const port of ports) port.close();
  for (const server of servers) server.forceShutdown();
});

// biome-ignore lint/suspicious/noExplicitAny: replies as proto-loader decodes them
type Reply = any;

function call(node: string, method: string, request: object): Promise<Reply> {
  const client = clients.get(node) as unknown as Record<
    string,
    (r: object, cb: (e: grpc.ServiceError | null, v: Reply) => void) => void
  >;
  return new Promise((resolve, reject) =>
    client[method](request, (error, reply) => (error ? reject(error) : resolve(reply))),
  );
}

/** Calls any node, follows the not-leader hint, and waits out elections (UNAVAILABLE). */
async function callLeader(method: string, request: object): Promise<Reply> {
  let node = 'n1';
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      return await call(node, method, request);
    } catch (error) {
      const e = error as grpc.ServiceError;
      if (e.code === grpc.status.FAILED_PRECONDITION) {
        const leader = e.metadata.get(LEADER_METADATA_KEY)[0];
        node =
          [...addresses].find(([, a]) => a === leader)?.[0] ?? names[(names.indexOf(node) + 1) % 3];
      } else if (e.code === grpc.status.UNAVAILABLE) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      } else {
        throw error;
      }
    }
  }
  throw new Error(`no leader answered ${method}`);
}

describe('the public Cache API over real gRPC, three nodes on loopback', () => {
  it('SET then GET returns the value, its version and its expiry', async () => {
    const set = await callLeader('Set', {
      key: 'greeting',
      value: Buffer.from('hello'),
      ttl_ms: '60000',
    });
    expect(set.outcome).toBe('APPLIED');
    const got = await callLeader('Get', { key: 'greeting' });
    expect(got.found).toBe(true);
    expect(Buffer.from(got.entry.value).toString()).toBe('hello');
    expect(got.entry.version).toBe(set.version);
    expect(Number(got.entry.expires_at_ms)).toBeGreaterThan(Date.now());
  });

  it('NX on a present key is an outcome, not an error; DEL and TTL behave', async () => {
    await callLeader('Set', { key: 'k', value: Buffer.from('1') });
    expect(
      (await callLeader('Set', { key: 'k', value: Buffer.from('2'), condition: 'IF_ABSENT' }))
        .outcome,
    ).toBe('NOT_APPLIED');
    expect(Number((await callLeader('Ttl', { key: 'k' })).ttl_ms)).toBe(-1);
    expect((await callLeader('Del', { keys: ['k'] })).outcome).toBe('APPLIED');
    expect((await callLeader('Get', { key: 'k' })).found).toBe(false);
  });

  it('a follower answers FAILED_PRECONDITION naming the leader', async () => {
    await callLeader('Set', { key: 'where', value: Buffer.from('x') });
    const nodeAt = new Map([...addresses].map(([node, address]) => [address, node]));
    await expectRedirectsToTheLeader([...addresses.values()], (address) =>
      call(nodeAt.get(address) as string, 'Get', { key: 'where' }),
    );
  });

  it('bad input gets the documented status naming the problem', async () => {
    // Shards of 4 MiB here: no entry under the value limit outgrows one.
    await expectDocumentedErrors(
      callLeader,
      badRequests({ shardOf: (key) => hosts[0].shardOf(key) }),
    );
  });
});

describe('the Pipeline stream', () => {
  it('10,000 requests in flight on one stream each get their reply, tagged, in any order', async () => {
    // To a node that leads some shard (elections on a loaded machine may have moved them).
    let leading = -1;
    for (let waited = 0; leading < 0 && waited < 100; waited++) {
      leading = hosts.findIndex((host) =>
        host.shardIds.some((id) => id !== METADATA_SHARD && host.replica(id).isLeader),
      );
      if (leading < 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // biome-ignore lint/suspicious/noExplicitAny: a generated client
    const client: any = clients.get(names[leading]);
    const stream = client.Pipeline();
    const replies = new Map<string, Reply>();
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (reply: Reply) => replies.set(reply.tag, reply));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const count = 10_000;
    for (let i = 0; i < count; i++) {
      const tag = String(i);
      const request =
        i % 2 === 0
          ? { tag, set: { key: `p${i}`, value: Buffer.from(`v${i}`) } }
          : { tag, get: { key: `p${i - 1}` } };
      stream.write(request);
    }
    stream.end();
    await done;
    expect(replies.size).toBe(count);
    for (let i = 0; i < count; i++) {
      const reply = replies.get(String(i));
      // Either the operation's own reply, or a status (this node may not lead that key's shard).
      const expected = i % 2 === 0 ? 'set' : 'get';
      expect([expected, 'status']).toContain(reply.reply);
      if (reply.reply === 'status') expect(reply.status.code).toBe(grpc.status.FAILED_PRECONDITION);
    }
    const applied = [...replies.values()].filter(
      (r) => r.reply === 'set' && r.set.outcome === 'APPLIED',
    );
    expect(applied.length).toBeGreaterThan(0);
  });
});

describe('the Admin service', () => {
  it('serves the cluster map: every slot in one shard, each shard on three nodes, its leader named', async () => {
    // biome-ignore lint/suspicious/noExplicitAny: a generated client
    const admin: any = new publicApi.Admin(
      addresses.get('n1') as string,
      grpc.credentials.createInsecure(),
    );
    await callLeader('Set', { key: 'warm', value: Buffer.from('up') });
    const map: Reply = await new Promise((resolve, reject) =>
      admin.ClusterMap({}, (error: grpc.ServiceError | null, reply: Reply) =>
        error ? reject(error) : resolve(reply),
      ),
    );
    expect(map.slot_count).toBe(16384);
    expect(map.nodes.map((n: Reply) => n.node_id)).toEqual(names);
    const covered = map.shards.flatMap((shard: Reply) =>
      shard.slots.map((r: Reply) => r.last - r.first + 1),
    );
    expect(covered.reduce((a: number, b: number) => a + b, 0)).toBe(16384);
    for (const shard of map.shards) {
      expect(shard.replicas).toHaveLength(3);
      expect(names).toContain(shard.leader);
    }
    await expect(
      new Promise((resolve, reject) =>
        admin.AddNode({}, (error: grpc.ServiceError | null, reply: Reply) =>
          error ? reject(error) : resolve(reply),
        ),
      ),
    ).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
    admin.close();
  });
});
