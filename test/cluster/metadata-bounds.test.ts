// The metadata group keeps the cluster map whatever the Membership service is sent: requests
// are bounded and checked before anything is stored, only members report leaders, and only
// in sane terms; and the group's store never evicts.
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foundingMap, METADATA_SHARD } from '../../src/cluster/cluster-map.ts';
import { MAX_TERM_STEP } from '../../src/cluster/membership-limits.ts';
import { MembershipClient } from '../../src/cluster/membership-rpc.ts';
import {
  MetadataFullError,
  MetadataStore,
  metadataNeverEvicts,
} from '../../src/cluster/metadata.ts';
import { loadConfig } from '../../src/server/config.ts';
import { evictionPolicyFactory } from '../../src/server/eviction-plugins.ts';
import { type RunningNode, startNode } from '../../src/server/node.ts';
import { HostCluster, waitFor } from '../shard/host-cluster.ts';
import { freePort } from '../support/node-processes.ts';

const silent = pino({ level: 'silent' });
const SERVICE = '/raftcache.membership.v1.Membership';

/** Sends `body` as it is to a Membership method: what no well-behaved node sends. */
function rawCall(address: string, method: string, body: Buffer): Promise<unknown> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<unknown>((resolve, reject) => {
    client.makeUnaryRequest(
      `${SERVICE}/${method}`,
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => JSON.parse(bytes.toString('utf8')),
      body,
      { deadline: Date.now() + 5_000 },
      (error, reply) => (error ? reject(error) : resolve(reply)),
    );
  }).finally(() => client.close());
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/** Calls `method` with `request` at `address`, following one redirect to the leader. */
async function call(address: string, method: string, request: unknown): Promise<unknown> {
  const reply = (await rawCall(address, method, json(request))) as { redirect?: string };
  return reply.redirect === undefined ? reply : rawCall(reply.redirect, method, json(request));
}

const intro = (nodeId: string, address: string) => ({
  nodeId,
  address,
  region: 'default',
  capacityBytes: 1 << 20,
  process: `${nodeId}-p`,
});

describe('the Membership service of a running cluster', () => {
  const ids = ['n1', 'n2', 'n3'];
  const running: RunningNode[] = [];
  let addresses: string[] = [];

  beforeAll(async () => {
    addresses = await Promise.all(ids.map(async () => `127.0.0.1:${await freePort()}`));
    const initial = ids.map((id, i) => `${id}=${addresses[i]}`).join(',');
    const nodes = await Promise.all(
      ids.map((id, i) =>
        startNode(
          loadConfig(
            [
              '--node-id',
              id,
              '--listen',
              `${addresses[i]}`,
              '--shards',
              '2',
              '--bootstrap',
              '--initial-nodes',
              initial,
            ],
            {},
          ),
          silent,
        ),
      ),
    );
    running.push(...nodes);
  }, 20_000);

  afterAll(async () => {
    await Promise.all(running.map((node) => node.close()));
  });

  const probe = async () => {
    const client = new MembershipClient(`${addresses[0]}`);
    try {
      return await client.probe();
    } finally {
      client.close();
    }
  };
  const hintOf = async (shardId: number) =>
    (await probe()).leaders.find((l) => l.shardId === shardId)?.node;

  it('refuses requests too large, not JSON, or of bad fields, and stores none', async () => {
    const before = (await probe()).map;
    const at = `${addresses[1]}`;
    const refusals = [
      rawCall(at, 'Join', Buffer.alloc(70 * 1024, 0x20)),
      rawCall(at, 'Join', Buffer.from('{"nodeId":')),
      rawCall(at, 'ReportLeaders', Buffer.from([0xff, 0x00, 0x07])),
      call(at, 'Join', { ...intro('n9', '127.0.0.1:9'), region: 'x'.repeat(65) }),
      call(at, 'Join', { ...intro('n9', '127.0.0.1:9'), capacityBytes: -1 }),
      call(at, 'Join', { ...intro('n/9', '127.0.0.1:9') }),
      call(at, 'ReportLeaders', { node: 'n1', leaders: [{ shardId: 1, term: Number.NaN }] }),
      call(at, 'ReportLeaders', { node: 'n1', leaders: [{ shardId: 1, term: 1e300 }] }),
      call(at, 'ReportLeaders', { node: 'n1', leaders: [{ shardId: 1.5, term: 2 }] }),
      call(at, 'ReportLeaders', {
        node: 'n1',
        leaders: [
          { shardId: 1, term: 2 },
          { shardId: 1, term: 3 },
        ],
      }),
    ];
    for (const refused of await Promise.allSettled(refusals)) {
      expect(refused).toMatchObject({
        status: 'rejected',
        reason: { code: grpc.status.INVALID_ARGUMENT },
      });
    }
    expect((await probe()).map).toEqual(before);
  });

  it('keeps its map through a flood of reports with huge node names, and takes a join after', async () => {
    // What once filled the metadata group's store until its LRU evicted the map: each report
    // under the size limit, each naming a 60,000-character node, each for a shard of its own.
    const at = `${addresses[0]}`;
    const flood = Array.from({ length: 300 }, (_, i) =>
      call(at, 'ReportLeaders', {
        node: `n${'x'.repeat(60_000)}`,
        leaders: [{ shardId: 1_000 + i, term: 1 }],
      }).then(
        () => 'recorded',
        (error: grpc.ServiceError) => error.code,
      ),
    );
    expect(new Set(await Promise.all(flood))).toEqual(new Set([grpc.status.INVALID_ARGUMENT]));
    const address = `127.0.0.1:${await freePort()}`;
    const joined = (await call(at, 'Join', {
      ...intro('n4', address),
      junk: 'y'.repeat(1000),
    })) as {
      map: { nodes: Record<string, unknown>[] };
    };
    const n4 = joined.map.nodes.find((n) => n.nodeId === 'n4');
    // Only the introduction's own fields go into the map.
    expect(n4).toEqual({ ...intro('n4', address), incarnation: 1 });
  });

  it('records leader hints only from members, for shards they hold, in sane terms', async () => {
    // The real leaders report within half a second of winning.
    await expect.poll(async () => (await probe()).leaders.length, { timeout: 8_000 }).toBe(2);
    const real = await hintOf(1);
    const claimer = ids.find((id) => id !== real) as string;
    const at = `${addresses[2]}`;
    await expect(
      call(at, 'ReportLeaders', { node: 'nx', leaders: [{ shardId: 1, term: 5 }] }),
    ).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    // A term a billion elections ahead would pin the hint to its node for good.
    expect(
      await call(at, 'ReportLeaders', { node: claimer, leaders: [{ shardId: 1, term: 1e9 }] }),
    ).toEqual({ recorded: true });
    // n4 joined (above) but holds no replica: it cannot lead shard 1.
    expect(
      await call(at, 'ReportLeaders', { node: 'n4', leaders: [{ shardId: 1, term: 100 }] }),
    ).toEqual({ recorded: true });
    // The metadata group and shard ids outside the map are not data shards to lead.
    expect(
      await call(at, 'ReportLeaders', {
        node: claimer,
        leaders: [
          { shardId: METADATA_SHARD, term: 100 },
          { shardId: 77, term: 100 },
        ],
      }),
    ).toEqual({ recorded: true });
    expect(await hintOf(1)).toBe(real);
    expect((await probe()).leaders.map((l) => l.shardId).sort()).toEqual([1, 2]);
    // A member's claim within the step is taken (hints are advice; clients follow redirects).
    expect(
      await call(at, 'ReportLeaders', {
        node: claimer,
        leaders: [{ shardId: 1, term: MAX_TERM_STEP }],
      }),
    ).toEqual({ recorded: true });
    await expect.poll(() => hintOf(1), { timeout: 3_000 }).toBe(claimer);
  });
});

describe('the metadata group store', () => {
  let cluster: HostCluster | undefined;
  afterAll(async () => {
    await cluster?.close();
  });

  it('never evicts: a full store refuses writes and keeps the map, while a data shard evicts', async () => {
    const createPolicy = await evictionPolicyFactory('lru', {
      logger: silent,
      clock: () => performance.now(),
    });
    cluster = new HostCluster({ policy: metadataNeverEvicts(createPolicy) }, 1, [
      { shardId: METADATA_SHARD, replicas: [{ replicaId: 1, node: 'n1' }] },
      { shardId: 1, replicas: [{ replicaId: 1, node: 'n1' }] },
    ]);
    const host = cluster.host('n1');
    await cluster.waitForLeaders();
    const metadata = new MetadataStore(host);
    const map = foundingMap({
      clusterId: 'c',
      nodes: [{ ...intro('n1', '127.0.0.1:1'), incarnation: 1 }],
      dataShards: 1,
      replicationFactor: 1,
    });
    await metadata.found(map);
    await waitFor(() => metadata.local() !== undefined);
    const fill = async (shardId: number) => {
      const outcomes: string[] = [];
      // 1 MiB of capacity (HostCluster's default), 64 KiB a value: full after 16.
      for (let i = 0; i < 24; i++) {
        const outcome = await host.replica(shardId).write({
          op: 'set',
          key: `filler/${i}`,
          value: new Uint8Array(64 * 1024),
        });
        outcomes.push(outcome.status === 'refused' ? outcome.code : outcome.status);
      }
      return outcomes;
    };
    const data = await fill(1);
    expect(data.every((o) => o === 'applied')).toBe(true);
    expect(host.replica(1).store.stats().evictions).toBeGreaterThan(0);
    const meta = await fill(METADATA_SHARD);
    expect(meta).toContain('OVER_CAPACITY');
    expect(host.replica(METADATA_SHARD).store.stats().evictions).toBe(0);
    expect(metadata.local()).toEqual(map);
    // The map's own changes say why they cannot be made.
    await expect(
      metadata.update((current) => ({ ...current, clusterId: 'x'.repeat(200_000) })),
    ).rejects.toBeInstanceOf(MetadataFullError);
    expect(metadata.local()).toEqual(map);
  });
});
