// The SDK's client sessions against three nodes over real gRPC on loopback: writes far past
// 32 in flight, retries whose replies were lost across a leader change, a retry after its
// session expired, and a client that dies mid-write. Double application is made visible by
// NX and compare-and-set: a write applied twice would answer "not applied".
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheClient, OutcomeUnknownError } from '../../src/client/index.ts';
import { publicApi } from '../../src/protocol/proto.ts';
import { until } from '../support/until.ts';
import { InProcessNodes } from './in-process-nodes.ts';

const IDLE_MS = 10 * 60 * 1000;
let nodes: InProcessNodes;
let bystander: CacheClient;

beforeAll(async () => {
  nodes = await InProcessNodes.start(3);
  bystander = new CacheClient({ seeds: nodes.seeds });
  await bystander.set('warm-up', 'x', { deadlineMs: 30_000 });
}, 60_000);

afterAll(async () => {
  await bystander?.close();
  await nodes?.close();
});

/** A client whose answers can be lost (through the proxies), retrying quickly. */
function lossyClient(): CacheClient {
  return new CacheClient({
    seeds: nodes.seeds,
    addressMap: nodes.viaProxies,
    attemptTimeoutMs: 300,
    deadlineMs: 30_000,
    // Lost answers are the point here, not a reason to stop calling a node.
    resilience: { breakerThreshold: 1_000_000, maxConcurrency: 2_000 },
  });
}

function keysOfShard(shardId: number, prefix: string, count: number): string[] {
  const host = nodes.host('n1');
  const keys: string[] = [];
  for (let n = 0; keys.length < count; n++)
    if (host.shardOf(`${prefix}-${n}`) === shardId) keys.push(`${prefix}-${n}`);
  return keys;
}

function keyOfShard(shardId: number, prefix: string): string {
  return keysOfShard(shardId, prefix, 1)[0] as string;
}

/** The version `node`'s replica of the key's shard holds, if any. */
function versionAt(node: string, key: string): number | undefined {
  const host = nodes.host(node);
  return host.replica(host.shardOf(key)).store.getEntry(key, Date.now() + nodes.clockOffsetMs)
    ?.version;
}

describe('client sessions, end to end', () => {
  it('applies 2,000 writes of one client in flight at once exactly once each, and then forgets them', async () => {
    const client = lossyClient();
    try {
      const keys = Array.from({ length: 2000 }, (_, i) => `many-${i}`);
      const results = await Promise.all(
        keys.map((key) => client.set(key, key, { ifAbsent: true })),
      );
      expect(results.filter((r) => !r.applied)).toEqual([]);
      // The writes issued together shared one opening per shard: 2,000 writes, 3 openings.
      expect(client.metrics.calls).toBe(2003);
      const entries = await client.mget(keys);
      expect(entries.every((value, i) => value?.toString() === keys[i])).toBe(true);
      for (const [i, key] of keys.entries())
        if (i % 100 === 0) expect((await client.getEntry(key))?.version).toBe(results[i]?.version);
      // Once a later write says they were answered, a shard holds none of their outcomes.
      const shardId = nodes.host('n1').shardOf('many-0');
      const leader = await nodes.leaderOf(shardId);
      await client.set(keyOfShard(shardId, 'after-many'), 'x');
      const held = nodes.host(leader).replica(shardId).store.sessionStats().outcomes;
      expect(held).toBeLessThan(10);
    } finally {
      await client.close();
    }
  }, 60_000);

  it('answers retries whose replies were lost with the recorded outcomes, across a leader change, 200 writes in flight', async () => {
    const shardId = 1;
    const client = lossyClient();
    try {
      await client.set(keyOfShard(shardId, 'across-warm'), 'x');
      const keys = keysOfShard(shardId, 'across', 200);
      nodes.stallReplies();
      const writes = keys.map((key) => client.set(key, 'v', { ifAbsent: true }));
      const leader = await nodes.leaderOf(shardId);
      await until(() => (keys.every((key) => versionAt(leader, key)) ? true : undefined), 20_000);
      const applied = keys.map((key) => versionAt(leader, key));
      // Every write timed out at least once and was sent again: its answers are lost.
      await until(
        () => (client.metrics.ambiguousRetries >= keys.length ? true : undefined),
        20_000,
      );
      expect(nodes.host(leader).transferLeadership(shardId)).toBe('started');
      await until(() => {
        const now = ['n1', 'n2', 'n3'].find(
          (n) => n !== leader && nodes.host(n).stats(shardId).role === 'leader',
        );
        return now;
      }, 10_000);
      nodes.heal();
      const results = await Promise.all(writes);
      expect(results.map((r) => r.applied)).toEqual(keys.map(() => true));
      expect(results.map((r) => r.version)).toEqual(applied);
      expect(client.metrics.ambiguousRetries).toBeGreaterThan(0);
    } finally {
      nodes.heal();
      await client.close();
    }
  }, 60_000);

  it('a retry after its session expired gets SESSION_EXPIRED and ends as an unknown outcome, never a second application', async () => {
    const shardId = 2;
    const client = lossyClient();
    try {
      const key = keyOfShard(shardId, 'expiring');
      const created = await client.set(key, '1', { ifAbsent: true });
      nodes.stallReplies();
      const cas = client.set(key, '2', { ifVersion: created.version as number });
      const leader = await nodes.leaderOf(shardId);
      const v2 = await until(() => {
        const v = versionAt(leader, key);
        return v !== created.version ? v : undefined;
      }, 10_000);
      // Ten idle minutes of leader time pass; another client's write expires the session.
      nodes.clockOffsetMs += IDLE_MS + 60_000;
      await bystander.set(keyOfShard(shardId, 'expiring-other'), 'x');
      await until(() => (client.metrics.ambiguousRetries > 0 ? true : undefined), 20_000);
      nodes.heal();
      const outcome = await cas.catch((error: unknown) => error);
      expect(outcome).toBeInstanceOf(OutcomeUnknownError);
      expect((outcome as Error).message).toMatch(/session/);
      expect(versionAt(leader, key)).toBe(v2);
      expect((await client.getString(key)) ?? '').toBe('2');
      // A write that certainly never applied goes again in a new session, and applies once.
      await client.set(keyOfShard(shardId, 'expiring-again'), 'v'); // a live session again
      nodes.clockOffsetMs += IDLE_MS + 60_000;
      await bystander.set(keyOfShard(shardId, 'expiring-other'), 'y');
      const before = client.metrics;
      const fresh = await client.set(keyOfShard(shardId, 'expiring-fresh'), 'v', {
        ifAbsent: true,
      });
      expect(fresh.applied).toBe(true);
      // Refused SESSION_EXPIRED, a new session opened (a call of its own), sent again.
      expect(client.metrics.calls - before.calls).toBe(2);
      expect(client.metrics.retries - before.retries).toBe(1);
    } finally {
      nodes.heal();
      await client.close();
    }
  }, 60_000);

  it('frees what a client that died mid-write left once its session expires, the same on every replica', async () => {
    const shardId = 3;
    const client = lossyClient();
    await client.set(keyOfShard(shardId, 'crash-warm'), 'x');
    const keys = keysOfShard(shardId, 'crash', 50);
    const leader = await nodes.leaderOf(shardId);
    nodes.stallReplies();
    const writes = keys.map((key) => client.set(key, 'v').catch(() => undefined));
    await until(() => (keys.every((key) => versionAt(leader, key)) ? true : undefined), 20_000);
    // The client dies with its writes unanswered.
    await client.close();
    nodes.heal();
    await Promise.all(writes);
    const store = () => nodes.host(leader).replica(shardId).store;
    expect(store().sessionStats().outcomes).toBeGreaterThanOrEqual(50);
    nodes.clockOffsetMs += IDLE_MS + 60_000;
    await bystander.set(keyOfShard(shardId, 'crash-other'), 'x');
    expect(store().sessionStats()).toEqual({ sessions: 1, outcomes: 1 });
    const applied = store().appliedIndex;
    const replicas = ['n1', 'n2', 'n3'].map((n) => nodes.host(n).replica(shardId).store);
    await until(() => (replicas.every((s) => s.appliedIndex === applied) ? true : undefined));
    for (const replica of replicas) {
      expect(replica.sessionStats()).toEqual({ sessions: 1, outcomes: 1 });
      expect(replica.digest()).toBe(store().digest());
    }
  }, 60_000);

  it('a raw gRPC client uses sessions from the .proto alone; a write id without a client id is refused', async () => {
    const shardId = 1;
    const leader = await nodes.leaderOf(shardId);
    const raw = new publicApi.Cache(
      nodes.addresses.get(leader) as string,
      grpc.credentials.createInsecure(),
    );
    type Callback = (error: grpc.ServiceError | null, reply: unknown) => void;
    const methods = raw as unknown as Record<string, (request: object, done: Callback) => void>;
    // biome-ignore lint/suspicious/noExplicitAny: replies as proto-loader decodes them
    const call = (method: string, request: object): Promise<any> =>
      new Promise((resolve, reject) =>
        methods[method]?.(request, (error, reply) => (error ? reject(error) : resolve(reply))),
      );
    const code = (promise: Promise<unknown>) =>
      promise.then(
        () => 'OK',
        (error: grpc.ServiceError) => grpc.status[error.code],
      );
    try {
      const opened = await call('OpenSession', { shard_id: shardId, client_id: 'py-1' });
      expect(opened).toMatchObject({ max_pending_span: '4096', idle_timeout_ms: '600000' });
      const key = keyOfShard(shardId, 'raw');
      const writeId = {
        client_id: 'py-1',
        session_id: opened.session_id,
        sequence: 1,
        lowest_pending: 1,
      };
      const set = { key, value: Buffer.from('v'), condition: 'IF_ABSENT', write_id: writeId };
      const first = await call('Set', set);
      expect(first.outcome).toBe('APPLIED');
      // The same write again (a retry after a lost answer): the same answer, applied once.
      expect(await call('Set', set)).toEqual(first);
      // Without a write id the write is not idempotent: NX a second time finds the key.
      const bare = {
        key: keyOfShard(shardId, 'raw-bare'),
        value: Buffer.from('v'),
        condition: 'IF_ABSENT',
      };
      expect((await call('Set', bare)).outcome).toBe('APPLIED');
      expect((await call('Set', bare)).outcome).toBe('NOT_APPLIED');
      // A write id with an empty client id is refused, never shared between clients.
      for (const client_id of ['', undefined])
        expect(await code(call('Set', { ...bare, write_id: { ...writeId, client_id } }))).toBe(
          'INVALID_ARGUMENT',
        );
      expect(await code(call('Set', { ...bare, write_id: {} }))).toBe('INVALID_ARGUMENT');
      expect(await code(call('OpenSession', { shard_id: shardId, client_id: '' }))).toBe(
        'INVALID_ARGUMENT',
      );
      // Shard 0 is the metadata group, not a shard clients write to.
      expect(await code(call('OpenSession', { client_id: 'py-1' }))).toBe('INVALID_ARGUMENT');
      // A session the shard does not hold: ABORTED, and the write did not apply.
      const unknownSession = { ...writeId, session_id: '999999', sequence: 2, lowest_pending: 2 };
      const fresh = { key: keyOfShard(shardId, 'raw-expired'), value: Buffer.from('v') };
      expect(await code(call('Set', { ...fresh, write_id: unknownSession }))).toBe('ABORTED');
      expect(versionAt(leader, fresh.key)).toBeUndefined();
      // Past the pending span: refused before it is proposed.
      const far = { ...writeId, sequence: 5000, lowest_pending: 1 };
      expect(await code(call('Set', { ...fresh, write_id: far }))).toBe('INVALID_ARGUMENT');
    } finally {
      raw.close();
    }
  });
});
