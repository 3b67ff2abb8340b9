import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicApi } from '../../src/protocol/proto.ts';
import {
  badRequests,
  expectDocumentedErrors,
  expectRedirectsToTheLeader,
} from '../support/documented-errors.ts';
import { GrpcCluster, type Reply } from '../support/grpc-cluster.ts';
import { encode, rawCall } from '../support/raw-grpc.ts';

/** Three nodes in this process, each one port for peers and the public API, on loopback. */
let cluster: GrpcCluster;

beforeAll(async () => {
  cluster = await GrpcCluster.start();
});

afterAll(async () => {
  await cluster.close();
});

const call = (node: string, method: string, request: object) => cluster.call(node, method, request);
const callLeader = (method: string, request: object) => cluster.callLeader(method, request);

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
    const nodeAt = new Map([...cluster.addresses].map(([node, address]) => [address, node]));
    await expectRedirectsToTheLeader([...cluster.addresses.values()], (address) =>
      call(nodeAt.get(address) as string, 'Get', { key: 'where' }),
    );
  });

  it('bad input gets the documented status naming the problem', async () => {
    // Shards of 4 MiB here: no entry under the value limit outgrows one.
    await expectDocumentedErrors(
      callLeader,
      badRequests({ shardOf: (key) => cluster.host('n1').shardOf(key) }),
    );
  });
});

describe('the Pipeline stream', () => {
  it('10,000 requests in flight on one stream each get their reply, tagged, in any order', async () => {
    // To a node that leads some shard (elections on a loaded machine may have moved them).
    const leading = await cluster.someLeader();
    // biome-ignore lint/suspicious/noExplicitAny: a generated client
    const client: any = new publicApi.Cache(
      cluster.address(leading),
      grpc.credentials.createInsecure(),
    );
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
    client.close();
  });
});

describe('the Admin service', () => {
  it('serves the cluster map: every slot in one shard, each shard on three nodes, its leader named', async () => {
    // biome-ignore lint/suspicious/noExplicitAny: a generated client
    const admin: any = new publicApi.Admin(
      cluster.address('n1'),
      grpc.credentials.createInsecure(),
    );
    await callLeader('Set', { key: 'warm', value: Buffer.from('up') });
    const map: Reply = await new Promise((resolve, reject) =>
      admin.ClusterMap({}, (error: grpc.ServiceError | null, reply: Reply) =>
        error ? reject(error) : resolve(reply),
      ),
    );
    expect(map.slot_count).toBe(16384);
    expect(map.nodes.map((n: Reply) => n.node_id)).toEqual(cluster.names);
    const covered = map.shards.flatMap((shard: Reply) =>
      shard.slots.map((r: Reply) => r.last - r.first + 1),
    );
    expect(covered.reduce((a: number, b: number) => a + b, 0)).toBe(16384);
    for (const shard of map.shards) {
      expect(shard.replicas).toHaveLength(3);
      expect(cluster.names).toContain(shard.leader);
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

describe('MGet entries', () => {
  it('carry the version, expiry and creation time Get gives for the same key', async () => {
    const set = await callLeader('Set', {
      key: '{mg}a',
      value: Buffer.from('1'),
      ttl_ms: '60000',
    });
    await callLeader('Set', { key: '{mg}b', value: Buffer.from('2') });
    const got = await callLeader('Get', { key: '{mg}a' });
    const many = await callLeader('MGet', { keys: ['{mg}a', '{mg}b', '{mg}none'] });
    expect(many.values.map((v: Reply) => v.found)).toEqual([true, true, false]);
    const [a, b] = many.values.map((v: Reply) => v.entry);
    expect(a.version).toBe(set.version);
    expect(a).toMatchObject({
      version: got.entry.version,
      expires_at_ms: got.entry.expires_at_ms,
      created_at_ms: got.entry.created_at_ms,
    });
    expect(Number(a.created_at_ms)).toBeGreaterThan(0);
    expect(Number(a.expires_at_ms)).toBeGreaterThan(Date.now());
    expect(Number(b.version)).toBeGreaterThan(Number(a.version));
    expect(b.expires_at_ms).toBe('0');
    // The point of a version: a compare-and-set with it holds, with an older one it does not.
    const cas = await callLeader('Set', {
      key: '{mg}a',
      value: Buffer.from('3'),
      if_version: a.version,
    });
    expect(cas.outcome).toBe('APPLIED');
  });
});

describe('enums this version does not define are INVALID_ARGUMENT', () => {
  it('GetStats with an unknown scope is refused, not answered as CLUSTER', async () => {
    await expect(cluster.call('n1', 'GetStats', { scope: 9 }, 'Admin')).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringMatching(/unknown scope 9/),
    });
    const known = await cluster.call('n1', 'GetStats', { scope: 'NODE' }, 'Admin');
    expect(known.shards.length).toBeGreaterThan(0);
  });

  it('Set with an unknown condition, and reads with an unknown consistency', async () => {
    await expect(
      callLeader('Set', { key: 'e', value: Buffer.from('v'), condition: 5 }),
    ).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringMatching(/unknown condition 5/),
    });
    for (const method of ['Get', 'Ttl'])
      await expect(callLeader(method, { key: 'e', consistency: 3 })).rejects.toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
      });
    await expect(callLeader('MGet', { keys: ['e'], consistency: 3 })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
  });
});

describe('STALE reads say how stale they may be', () => {
  it('a follower answers with its applied and known commit index and its last leader contact', async () => {
    const set = await callLeader('Set', { key: 'stale-k', value: Buffer.from('v') });
    const leader = await cluster.leaderOf('stale-k');
    const follower = cluster.names.find((n) => n !== leader) ?? 'n1';
    // Once the follower has applied the write (a stale read may be behind until then).
    const reply = await untilReply(
      () => call(follower, 'Get', { key: 'stale-k', consistency: 'STALE' }),
      (r) => r.found,
    );
    expect(reply.entry.version).toBe(set.version);
    expect(Number(reply.staleness.applied_index)).toBeGreaterThanOrEqual(Number(set.version));
    expect(Number(reply.staleness.known_commit_index)).toBeGreaterThanOrEqual(
      Number(reply.staleness.applied_index),
    );
    // Heartbeats come every few ticks: a follower of a live leader heard from it lately.
    expect(Number(reply.staleness.since_leader_contact_ms)).toBeLessThan(1_000);
    const bounded = await call(follower, 'Ttl', {
      key: 'stale-k',
      consistency: 'STALE',
      max_staleness_ms: '5000',
    });
    expect(bounded).toMatchObject({ ttl_ms: '-1', staleness: expect.anything() });
    const many = await call(follower, 'MGet', { keys: ['stale-k'], consistency: 'STALE' });
    expect(Number(many.staleness.applied_index)).toBeGreaterThan(0);
    // A linearizable read is not stale: no staleness, and no bound to take.
    expect((await callLeader('Get', { key: 'stale-k' })).staleness).toBeNull();
    await expect(
      callLeader('Get', { key: 'stale-k', max_staleness_ms: '100' }),
    ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });
});

/** Repeats `ask` until its reply passes `done` (3 s at most). */
async function untilReply(ask: () => Promise<Reply>, done: (reply: Reply) => boolean) {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const reply = await ask();
    if (done(reply) || Date.now() > deadline) return reply;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('a Pipeline stream with messages that are not valid protobuf (raw HTTP/2 frames)', () => {
  const pipeline = (...requests: object[]) =>
    requests.map((request) => encode('Cache', 'Pipeline', request));
  const garbage = Buffer.from([0xff, 0xff, 0xff]);

  it('answers every request once, the bad one with INVALID_ARGUMENT tagged 0, and ends OK', async () => {
    const leader = await cluster.leaderOf('pipe-a');
    // An empty request (answered at once), a write in flight, then bytes that decode to nothing.
    for (const gapMs of [undefined, 0, 1, 2]) {
      const [empty, del] = pipeline({ tag: '1' }, { tag: '2', del: { keys: ['pipe-a'] } });
      const result = await rawCall(
        cluster.address(leader),
        'Cache',
        'Pipeline',
        [empty as Buffer, del as Buffer, garbage],
        gapMs === undefined ? {} : { gapMs },
      );
      expect(result.status, `gap ${gapMs}`).toBe(grpc.status.OK);
      const byTag = new Map(result.replies.map((r) => [r.tag, r]));
      expect(result.replies).toHaveLength(3);
      expect(byTag.get('1')?.status.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(byTag.get('2')?.reply).toBe('del');
      expect(byTag.get('0')?.status).toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        message: expect.stringMatching(/not valid protobuf/),
      });
    }
  });

  it('goes on after a bad message: later requests are answered, the bad one tagged when it can be read', async () => {
    const leader = await cluster.leaderOf('{pipe}b');
    const [first, last] = pipeline(
      { tag: '7', set: { key: '{pipe}b', value: Buffer.from('1') } },
      { tag: '9', set: { key: '{pipe}c', value: Buffer.from('3') } },
    );
    // Tag 8, then a Set whose key declares 10 bytes more than it holds.
    const truncated = Buffer.from([0x08, 8, 0x1a, 5, 0x0a, 13, 0x61, 0x62, 0x63]);
    const result = await rawCall(cluster.address(leader), 'Cache', 'Pipeline', [
      first as Buffer,
      truncated,
      last as Buffer,
    ]);
    expect(result.status).toBe(grpc.status.OK);
    expect(result.replies.map((r) => r.tag).sort()).toEqual(['7', '8', '9']);
    const byTag = new Map(result.replies.map((r) => [r.tag, r]));
    expect(byTag.get('8')?.status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(byTag.get('9')?.set.outcome).toBe('APPLIED');
    expect((await callLeader('Get', { key: '{pipe}c' })).found).toBe(true);
  });

  it('ends with a status, never silently, when a message is over the size limit behind a request in flight', async () => {
    const leader = await cluster.leaderOf('pipe-d');
    const [del] = pipeline({ tag: '1', del: { keys: ['pipe-d'] } });
    // A frame prefix declaring 100 MiB: grpc-js refuses it as soon as it reads the length.
    const oversized = Buffer.from([0, 0x06, 0x40, 0, 0]);
    const result = await rawCall(cluster.address(leader), 'Cache', 'Pipeline', [del as Buffer], {
      keepOpen: true,
      gapMs: 0,
      timeoutMs: 3_000,
      after: oversized,
    });
    expect(result.status).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });
});
