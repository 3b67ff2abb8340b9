import { afterEach, describe, expect, it } from 'vitest';
import { type Outcome, readSnapshot, snapshotChunks } from '../../src/cache/index.ts';
import { SeededRandom } from '../../src/raft/random.ts';
import { OutcomeUnknownError } from '../../src/shard/errors.ts';
import { evenSlotTable, MultiRaftHost } from '../../src/shard/multi-raft-host.ts';
import {
  bytes,
  HostCluster,
  keyOf,
  NODES,
  SHARDS,
  text,
  waitFor,
  waitUntilSilent,
} from './host-cluster.ts';

let cluster: HostCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

describe('multi-raft host: failures', () => {
  it("elects new leaders when a leader's host closes, losing no acknowledged write", async () => {
    cluster = new HostCluster();
    const c = cluster;
    await c.waitForLeaders();
    const acknowledged = await writeToEveryShard(c, 10);
    const lost = c.leaderOf(1) as string;
    await c.host(lost).close();
    const survivors = NODES.filter((node) => node !== lost);
    await c.waitForLeaders(survivors);
    for (const shardId of SHARDS) {
      const leader = c.host(c.leaderOf(shardId, survivors) as string);
      for (const [key, value] of acknowledged) {
        if (leader.shardOf(key) !== shardId) continue;
        expect(text((await leader.get(key))?.value)).toBe(value);
      }
      const key = keyOf(leader, shardId, 'after');
      expect((await leader.set({ op: 'set', key, value: bytes('new') })).status).toBe('applied');
      expect(text((await leader.get(key))?.value)).toBe('new');
    }
  });

  it('brings a follower cut off while the leader compacted back by snapshot', async () => {
    cluster = new HostCluster({ snapshotEvery: 20, snapshotKeepEntries: 5 });
    const c = cluster;
    await c.waitForLeaders();
    const leaderNode = c.leaderOf(1) as string;
    const followerNode = NODES.find((node) => node !== leaderNode) as string;
    c.network.isolate(followerNode);
    await c.waitForLeaders(NODES.filter((node) => node !== followerNode));
    await waitUntilSilent(c, 1, c.leaderOf(1) as string, [followerNode]);
    const leaderHost = c.host(c.leaderOf(1) as string);
    for (let i = 0; i < 60; i++) {
      const key = keyOf(leaderHost, 1, `snap${i % 25}-`);
      await leaderHost.set({ op: 'set', key, value: bytes(`value ${i}`) });
    }
    await leaderHost.del({ op: 'del', keys: [keyOf(leaderHost, 1, 'snap3-')] });
    const leaderStats = leaderHost.stats(1);
    expect(leaderStats.firstLogIndex).toBeGreaterThan(c.host(followerNode).stats(1).appliedIndex);
    c.network.healAll();
    // Writes go on while the snapshot streams (the capture is copy-on-write).
    const during = Array.from({ length: 20 }, (_, i) =>
      leaderHost.set({
        op: 'set',
        key: keyOf(leaderHost, 1, `snap${i}-`),
        value: bytes(`late ${i}`),
      }),
    );
    const follower = c.host(followerNode);
    await waitFor(() => follower.stats(1).snapshotsInstalled > 0);
    for (const outcome of await Promise.all(during)) expect(outcome.status).toBe('applied');
    await waitFor(() => follower.stats(1).appliedIndex === leaderHost.stats(1).appliedIndex);
    expect(follower.stats(1).snapshotsInstalled).toBeGreaterThanOrEqual(1);
    const state = (node: string) => readSnapshot(snapshotChunks(c.host(node).replica(1).store));
    for (const node of NODES) expect(state(node)).toEqual(state(leaderNode));
    // 25 keys: snap3- was deleted, then written again while the snapshot streamed.
    expect(state(followerNode).entries).toHaveLength(25);
  });

  it('catches a follower up with one snapshot while writes go on, though they outgrow the log kept behind a snapshot', async () => {
    // Little log kept behind a snapshot, a slow snapshot path: while the snapshot crosses,
    // the writes applied overrun what the log keeps. The entries after the snapshot being
    // streamed must stay, or the follower, once it installed it, needs another, and so on.
    cluster = new HostCluster({ snapshotEveryBytes: 16 << 10, snapshotKeepBytes: 16 << 10 });
    const c = cluster;
    await c.waitForLeaders();
    const leaderNode = c.leaderOf(1) as string;
    const followerNode = NODES.find((node) => node !== leaderNode) as string;
    const leader = c.host(leaderNode);
    const follower = c.host(followerNode);
    const value = new Uint8Array(2048).fill(5);
    c.network.isolate(followerNode);
    await c.waitForLeaders(NODES.filter((node) => node !== followerNode));
    await waitUntilSilent(c, 1, leaderNode, [followerNode]);
    const writeSome = async (prefix: string, count: number) => {
      for (let i = 0; i < count; i++)
        await leader.set({
          op: 'set',
          key: keyOf(leader, 1, `${prefix}${i % 40}-`),
          value,
        });
    };
    await writeSome('away', 60);
    expect(leader.stats(1).firstLogIndex).toBeGreaterThan(follower.stats(1).appliedIndex + 1);
    c.network.setSnapshotChunkDelay(300);
    c.network.healAll();
    // Writes go on until the follower has caught up (or for 6 s at most).
    const started = performance.now();
    while (
      follower.stats(1).appliedIndex < leader.stats(1).appliedIndex - 2 ||
      follower.stats(1).snapshotsInstalled === 0
    ) {
      if (performance.now() - started > 6_000) break;
      await writeSome('during', 5);
    }
    await waitFor(() => follower.stats(1).appliedIndex === leader.stats(1).appliedIndex);
    expect(follower.stats(1).snapshotsInstalled).toBe(1);
  });

  it('fails a write whose entry a new leader overwrote with outcome unknown', async () => {
    cluster = new HostCluster();
    const c = cluster;
    await c.waitForLeaders();
    const oldLeader = c.leaderOf(1) as string;
    const survivors = NODES.filter((node) => node !== oldLeader);
    c.network.isolate(oldLeader);
    const key = keyOf(c.host(oldLeader), 1, 'lost');
    const lost = c
      .host(oldLeader)
      .set({ op: 'set', key, value: bytes('never') })
      .then(
        (outcome) => outcome,
        (error: unknown) => error,
      );
    await waitFor(() => c.leaderOf(1, survivors) !== undefined);
    const newLeader = c.host(c.leaderOf(1, survivors) as string);
    await newLeader.set({ op: 'set', key, value: bytes('kept') });
    c.network.healAll();
    expect(await lost).toBeInstanceOf(OutcomeUnknownError);
    await waitFor(
      () => c.host(oldLeader).stats(1).appliedIndex === newLeader.stats(1).appliedIndex,
    );
    expect(text((await newLeader.get(key))?.value)).toBe('kept');
    expect(text((await c.host(oldLeader).get(key, { consistency: 'stale' }))?.value)).toBe('kept');
  });

  it('answers a write left on a deposed, cut-off leader as unknown, without waiting for a deadline', async () => {
    cluster = new HostCluster();
    const c = cluster;
    await c.waitForLeaders();
    const cutOff = c.leaderOf(1) as string;
    const host = c.host(cutOff);
    c.network.isolate(cutOff);
    const pending = host.set({
      op: 'set',
      key: keyOf(host, 1, 'lost'),
      value: bytes('v'),
    });
    // Check-quorum deposes it within an election timeout; three more and the write is given up.
    await expect(pending).rejects.toBeInstanceOf(OutcomeUnknownError);
    expect(host.stats(1).role).not.toBe('leader');
  });

  it('does not wait to hand away a shard that has no other voter', async () => {
    cluster = new HostCluster({}, 1, [{ shardId: 1, replicas: [{ replicaId: 1, node: 'n1' }] }]);
    const c = cluster;
    await c.waitForLeaders();
    const started = performance.now();
    expect(await c.host('n1').handOffLeadership(2_000)).toBe(true);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('hands leadership of every shard away before a graceful shutdown', async () => {
    cluster = new HostCluster();
    const c = cluster;
    await c.waitForLeaders();
    // Make n1 lead everything, then hand it all away.
    for (const shardId of SHARDS) {
      const leader = c.leaderOf(shardId) as string;
      if (leader !== 'n1') expect(c.host(leader).transferLeadership(shardId, 'n1')).toBe('started');
    }
    await waitFor(() => SHARDS.every((shardId) => c.leaderOf(shardId) === 'n1'));
    expect(await c.host('n1').handOffLeadership(2_000)).toBe(true);
    for (const shardId of SHARDS) expect(c.leaderOf(shardId)).not.toBe('n1');
    await c.host('n1').close();
    const survivors = NODES.filter((node) => node !== 'n1');
    for (const shardId of SHARDS) {
      const leader = c.host(c.leaderOf(shardId, survivors) as string);
      const key = keyOf(leader, shardId, 'handoff');
      expect((await leader.set({ op: 'set', key, value: bytes('v') })).status).toBe('applied');
    }
  });

  it('applies retried writes once under message loss, and the replicas converge', async () => {
    cluster = new HostCluster({}, 7);
    const c = cluster;
    await c.waitForLeaders();
    c.network.setDropRate(0.2);
    /** Sends `send` to the shard's leader until an answer comes (a lost one is retried). */
    const untilAnswered = async (send: (host: MultiRaftHost) => Promise<Outcome>) => {
      const deadline = performance.now() + 10_000;
      while (performance.now() < deadline) {
        const leader = c.leaderOf(1);
        const outcome = leader ? await send(c.host(leader)).catch(() => undefined) : undefined;
        if (outcome !== undefined) return outcome;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error('no answer within 10 s');
    };
    // Opening a session is safe to retry: a session nobody uses expires.
    const opened = await untilAnswered((host) =>
      host.openSession({ op: 'open-session', clientId: 'lossy' }, 1),
    );
    if (opened.status !== 'applied') throw new Error(`open: ${JSON.stringify(opened)}`);
    const session = opened.count;
    const written = new Map<string, { value: string; version: number }>();
    for (let i = 0; i < 30; i++) {
      const key = keyOf(c.host('n1'), 1, `lossy${i}-`);
      // NX under one write id, retried until answered, then sent again as a client whose
      // answer was lost would: applied twice, it would answer "exists" the second time.
      const writeId = { clientId: 'lossy', session, seq: i + 1, lowestPending: i + 1 };
      const request = {
        op: 'set' as const,
        key,
        value: bytes(`v${i}`),
        condition: 'nx' as const,
        writeId,
      };
      const outcome = await untilAnswered((host) => host.set(request));
      expect(outcome.status).toBe('applied');
      expect(await untilAnswered((host) => host.set(request))).toEqual(outcome);
      written.set(key, { value: `v${i}`, version: (outcome as { version: number }).version });
    }
    c.network.setDropRate(0);
    const leader = c.host(c.leaderOf(1) as string);
    for (const [key, { value, version }] of written) {
      const entry = await leader.get(key);
      expect({ value: text(entry?.value), version: entry?.version }).toEqual({ value, version });
    }
    await waitFor(() =>
      NODES.every((node) => c.host(node).stats(1).appliedIndex === leader.stats(1).appliedIndex),
    );
    const state = (node: string) => readSnapshot(snapshotChunks(c.host(node).replica(1).store));
    for (const node of NODES) expect(state(node)).toEqual(state(NODES[0]));
    expect(state(NODES[0]).entries).toHaveLength(30);
  });

  it('streams snapshots to two lagging followers, one capture at a time', async () => {
    const nodes = ['a', 'b', 'c', 'd', 'e'];
    const placement = [
      { shardId: 1, replicas: nodes.map((node, i) => ({ replicaId: i + 1, node })) },
    ];
    cluster = new HostCluster({ snapshotEvery: 20, snapshotKeepEntries: 5 }, 3, placement);
    const c = cluster;
    await c.waitForLeaders();
    const leaderNode = c.leaderOf(1) as string;
    const lagging = nodes.filter((node) => node !== leaderNode).slice(0, 2);
    for (const node of lagging) c.network.isolate(node);
    await waitUntilSilent(c, 1, leaderNode, lagging);
    const leader = c.host(leaderNode);
    for (let i = 0; i < 50; i++)
      await leader.set({ op: 'set', key: `k${i % 30}`, value: bytes(`v${i}`) });
    c.network.healAll();
    await waitFor(() =>
      nodes.every((node) => c.host(node).stats(1).appliedIndex === leader.stats(1).appliedIndex),
    );
    for (const node of lagging) expect(c.host(node).stats(1).snapshotsInstalled).toBe(1);
    const state = (node: string) => readSnapshot(snapshotChunks(c.host(node).replica(1).store));
    for (const node of nodes) expect(state(node)).toEqual(state(leaderNode));
  });

  it('takes back a node that lost its state as new incarnations: old one removed, learner, caught up, promoted', async () => {
    cluster = new HostCluster();
    const c = cluster;
    await c.waitForLeaders();
    const acknowledged = await writeToEveryShard(c, 20);
    await c.host('n3').close();
    const reborn = rejoin(c, 'n3', 4);
    await waitForVoters(c, '1,2,4');
    for (const [key, value] of acknowledged) {
      const shardId = reborn.shardOf(key);
      await waitFor(() => reborn.replica(shardId).store.getEntry(key, Date.now()) !== undefined);
      expect(text((await reborn.get(key, { consistency: 'stale' }))?.value)).toBe(value);
    }
    expect(reborn.stats(1).replicaId).toBe(4);
  });

  it('keeps a quorum when the node dies again right after its new incarnation became a voter', async () => {
    cluster = new HostCluster();
    const c = cluster;
    await c.waitForLeaders();
    await c.host('n3').close();
    const first = rejoin(c, 'n3', 4);
    // The moment the new incarnation votes in shard 1, its node dies again.
    await waitFor(() => {
      const leader = c.leaderOf(1, ['n1', 'n2']);
      return leader !== undefined && c.host(leader).replica(1).node.voters.includes(4);
    });
    await first.close();
    // The dead old incarnation was removed before it: two of three voters live, a quorum.
    const acknowledged = await writeToEveryShard(c, 5);
    const second = rejoin(c, 'n3', 5);
    await waitForVoters(c, '1,2,5');
    for (const [key, value] of acknowledged) {
      const shardId = second.shardOf(key);
      await waitFor(() => second.replica(shardId).store.getEntry(key, Date.now()) !== undefined);
      expect(text((await second.get(key, { consistency: 'stale' }))?.value)).toBe(value);
    }
  });
});

/**
 * `node` comes back empty, knowing no voters, and the map gives its replicas the fresh id
 * `replicaId` in every shard; every host takes that map.
 */
function rejoin(c: HostCluster, node: string, replicaId: number): MultiRaftHost {
  const placement = SHARDS.map((shardId) => ({
    shardId,
    replicas: [
      { replicaId: 1, node: 'n1' },
      { replicaId: 2, node: 'n2' },
      { replicaId, node },
    ],
  }));
  const reborn = new MultiRaftHost({
    node,
    transport: c.network.connect(node),
    capacityBytes: 1 << 20,
    clock: { now: () => Date.now(), monotonic: () => performance.now() },
    random: new SeededRandom(replicaId * 7),
  });
  c.hosts.set(node, reborn);
  const update = {
    shards: placement,
    slotShards: evenSlotTable(SHARDS),
    capacityOf: () => 1 << 20,
    founding: false,
  };
  for (const [name, host] of c.hosts)
    if (name !== node || host === reborn) host.applyPlacement(update);
  return reborn;
}

/** Until every shard's leader (on n1 or n2) has committed exactly `voters` and no learner. */
function waitForVoters(c: HostCluster, voters: string): Promise<void> {
  return waitFor(() =>
    SHARDS.every((shardId) => {
      const leader = c.leaderOf(shardId, ['n1', 'n2']);
      if (leader === undefined) return false;
      const raft = c.host(leader).replica(shardId).node;
      const conf = raft.confStateAt(raft.log.committed);
      return conf.voters.toSorted().join() === voters && conf.learners.length === 0;
    }),
  );
}

/** `count` acknowledged writes to each shard, through its leader: key → value. */
async function writeToEveryShard(c: HostCluster, count: number): Promise<Map<string, string>> {
  const acknowledged = new Map<string, string>();
  for (const shardId of SHARDS) {
    const leader = c.host(c.leaderOf(shardId) as string);
    for (let i = 0; i < count; i++) {
      const key = keyOf(leader, shardId, `s${shardId}-${i}-`);
      const outcome = await leader.set({ op: 'set', key, value: bytes(`v${i}`) });
      expect(outcome.status).toBe('applied');
      acknowledged.set(key, `v${i}`);
    }
  }
  return acknowledged;
}
