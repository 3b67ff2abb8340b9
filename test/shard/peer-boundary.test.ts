// Frames from peers that once crashed a node, sent over a real TCP peer link into real hosts:
// each must be dropped (or close its link), and the hosts must go on serving.
import { afterEach, describe, expect, it } from 'vitest';
import { rawMessage, TCP_NODES, TCP_SHARDS, TcpHosts, TYPE_CODE } from '../support/tcp-hosts.ts';
import { until } from '../support/until.ts';
import { bytes, keyOf, text } from './host-cluster.ts';

let cluster: TcpHosts | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

/** Writes and reads one key of every shard through its leader, and checks every replica runs. */
async function expectServing(c: TcpHosts, value: string): Promise<void> {
  await c.waitForLeaders();
  for (const shardId of TCP_SHARDS) {
    const leader = c.host(c.leaderOf(shardId) as string);
    const key = keyOf(leader, shardId);
    const outcome = await leader.set({ op: 'set', key, value: bytes(value) });
    expect(outcome.status).toBe('applied');
    expect(text((await leader.get(key))?.value)).toBe(value);
  }
  for (const node of TCP_NODES)
    for (const shardId of TCP_SHARDS) expect(c.host(node).stats(shardId).state).toBe('running');
}

/** The warnings of messages dropped, whose problem matches `problem`. */
function dropped(c: TcpHosts, problem: RegExp) {
  return c.log
    .at('warn', 'dropped a bad raft message')
    .filter((line) => problem.test(String(line.problem)));
}

/** Ids of the leader and of one follower of `shardId`, with their nodes. */
function roles(c: TcpHosts, shardId: number) {
  const leaderNode = c.leaderOf(shardId) as string;
  const followerNode = TCP_NODES.find((n) => n !== leaderNode) as string;
  const leader = c.host(leaderNode).stats(shardId);
  const follower = c.host(followerNode).stats(shardId);
  return { leaderNode, followerNode, leader, follower };
}

describe('frames from a peer that crashed a node', () => {
  it('a snap on a raft link (term NaN, snapshot index 1e6) is dropped, not installed without its data', async () => {
    cluster = await TcpHosts.start();
    const c = cluster;
    await expectServing(c, 'before');
    const shardId = 1;
    const { leaderNode, followerNode, leader, follower } = roles(c, shardId);
    const link = c.forge(followerNode, leaderNode);
    for (const term of [Number.NaN, c.host(leaderNode).replica(shardId).node.term]) {
      link.batch([
        rawMessage({
          shardId,
          type: TYPE_CODE.snap,
          from: leader.replicaId,
          to: follower.replicaId,
          term,
          snapshot: [1e6, 1, [1, 2, 3], []],
        }),
      ]);
    }
    await until(() => (dropped(c, /snap on a raft link/).length > 0 ? true : undefined));
    await expectServing(c, 'after');
    expect(c.host(followerNode).stats(shardId).appliedIndex).toBeLessThan(1e6);
  });

  it('an appResp claiming index 1e300 (term NaN), or past the leader log, is dropped, and writes go on', async () => {
    cluster = await TcpHosts.start();
    const c = cluster;
    await expectServing(c, 'before');
    const shardId = 2;
    const { leaderNode, followerNode, leader, follower } = roles(c, shardId);
    const link = c.forge(leaderNode, followerNode);
    const node = c.host(leaderNode).replica(shardId).node;
    link.batch([
      rawMessage({
        shardId,
        type: TYPE_CODE.appResp,
        from: follower.replicaId,
        to: leader.replicaId,
        term: Number.NaN,
        index: 1e300,
      }),
      rawMessage({
        shardId,
        type: TYPE_CODE.appResp,
        from: follower.replicaId,
        to: leader.replicaId,
        term: node.term,
        index: node.log.lastIndex() + 1_000,
      }),
    ]);
    await until(() => (dropped(c, /term NaN/).length > 0 ? true : undefined));
    await until(() => (dropped(c, /appResp acknowledges index/).length > 0 ? true : undefined));
    // The progress of that follower never goes past the leader's own log.
    for (let i = 0; i < 20; i++) {
      const key = keyOf(c.host(leaderNode), shardId, `w${i}-`);
      await c.host(leaderNode).set({ op: 'set', key, value: bytes('x') });
    }
    expect(node.progress(follower.replicaId)?.match ?? 0).toBeLessThanOrEqual(node.log.lastIndex());
    await expectServing(c, 'after');
  });
});
