/**
 * One test per line of "Beyond the paper" in shared/references/raft-checklist.md that
 * concerns pre-vote, check-quorum, leader transfer, ReadIndex and leases (and the related
 * exceptions in "Terms and roles"), named by the claim it shows.
 */
import { describe, expect, it } from 'vitest';
import { CAMPAIGN_TRANSFER, message, type NodeId } from '../../src/raft/types.ts';
import { Cluster, type ClusterOptions } from '../support/cluster.ts';

const ELECTION = 10;
const TICK_MS = 10;

/** A group with leases, its nodes' clocks set by hand (all at `now` unless skewed). */
function leaseCluster(options: Partial<ClusterOptions> = {}) {
  const clock = { now: 0, offset: new Map<NodeId, number>() };
  const cluster = new Cluster({
    ids: [1, 2, 3],
    tickMs: TICK_MS,
    leaseDriftMarginMs: 20,
    clock: (id) => clock.now + (clock.offset.get(id) ?? 0),
    ...options,
  });
  return { cluster, clock };
}

/** Ticks every node `times` times, delivering messages after each round of ticks. */
function tickAll(cluster: Cluster, times: number, except: NodeId[] = []): void {
  for (let i = 0; i < times; i++) {
    for (const id of cluster.hosts.keys()) if (!except.includes(id)) cluster.tick(id);
    cluster.stabilize();
  }
}

function elected(cluster: Cluster, id: NodeId = 1): Cluster {
  // Past the start-up quiet period that leases impose, then campaign.
  for (let i = 0; i < ELECTION; i++)
    for (const other of cluster.hosts.keys()) if (other !== id) cluster.tick(other);
  cluster.campaign(id);
  expect(cluster.leader()).toBe(id);
  return cluster;
}

describe('Pre-vote', () => {
  it('a node first asks whether it could win, and nobody changes term while it asks', () => {
    const cluster = new Cluster({ ids: [1, 2, 3] });
    cluster.node(1).campaign();
    expect(cluster.node(1).role).toBe('preCandidate');
    expect(cluster.node(1).term).toBe(0);
    const ready = cluster.node(1).ready();
    expect(ready.messages.map((m) => [m.type, m.term])).toEqual([
      ['preVote', 1],
      ['preVote', 1],
    ]);
    expect(ready.hardState).toBeUndefined();
  });

  it('pre-vote requests and granted answers carry the future term without changing any term', () => {
    const cluster = new Cluster({ ids: [1, 2, 3] });
    const voter = cluster.node(2);
    voter.step(message({ type: 'preVote', from: 1, to: 2, term: 5, index: 0, logTerm: 0 }));
    expect(voter.term).toBe(0);
    expect(voter.vote).toBe(0);
    const answers = voter.ready().messages;
    expect(voter.hasReady()).toBe(false);
    expect(answers.map((m) => [m.type, m.term, m.reject])).toEqual([['preVoteResp', 5, false]]);
  });

  it('a partitioned node that rejoins cannot depose a healthy leader', () => {
    const cluster = elected(new Cluster({ ids: [1, 2, 3] }));
    const term = cluster.node(1).term;
    cluster.isolate(3);
    tickAll(cluster, 10 * ELECTION);
    // Its pre-votes found no majority, so its term never rose.
    expect(cluster.node(3).term).toBe(term);
    cluster.recover();
    tickAll(cluster, 2);
    expect(cluster.leader()).toBe(1);
    expect(cluster.node(1).term).toBe(term);
    expect(cluster.node(3).lead).toBe(1);
  });
});

describe('Check-quorum', () => {
  it('a leader that has not heard from a majority within an election timeout steps down', () => {
    const cluster = elected(new Cluster({ ids: [1, 2, 3] }));
    cluster.isolate(1);
    tickAll(cluster, ELECTION, [2, 3]);
    expect(cluster.node(1).role).toBe('leader'); // activity before the cut still counts once
    tickAll(cluster, ELECTION, [2, 3]);
    expect(cluster.node(1).role).toBe('follower');
    expect(cluster.node(1).lead).toBe(0);
  });

  it('followers that hear a live leader ignore vote requests within the election timeout (leader stickiness), unless part of a transfer', () => {
    const cluster = elected(new Cluster({ ids: [1, 2, 3] }));
    const follower = cluster.node(2);
    const term = follower.term;
    const request = (context: number) =>
      message({ type: 'vote', from: 3, to: 2, term: term + 1, index: 99, logTerm: 99, context });
    follower.step(request(0));
    expect(follower.term).toBe(term);
    expect(follower.lead).toBe(1);
    expect(follower.hasReady()).toBe(false);
    follower.step(request(CAMPAIGN_TRANSFER));
    expect(follower.term).toBe(term + 1);
    expect(follower.vote).toBe(3);
  });
});

describe('Leader transfer', () => {
  it('the leader stops taking proposals, brings a slow target up to date, and tells it to campaign at once', () => {
    const cluster = elected(new Cluster({ ids: [1, 2, 3] }));
    cluster.cut(1, 3);
    cluster.propose(1, 'a');
    cluster.propose(1, 'b');
    cluster.recover();
    expect(cluster.node(1).transferLeadership(3)).toBe('started');
    expect(cluster.node(1).propose([new Uint8Array([1])])).toEqual({
      kind: 'refused',
      reason: 'transferring',
      leader: 1,
    });
    cluster.stabilize();
    expect(cluster.leader()).toBe(3);
    const types = cluster.delivered.map((m) => m.type);
    // Caught up first (an append), then told to campaign, then elected past pre-vote.
    expect(types.indexOf('timeoutNow')).toBeGreaterThan(types.lastIndexOf('preVote'));
    expect(cluster.appliedText(3)).toEqual(['a', 'b']);
  });

  it('a transfer to itself, to a non-member, or by a follower does nothing', () => {
    const cluster = elected(new Cluster({ ids: [1, 2, 3] }));
    expect(cluster.node(1).transferLeadership(1)).toBe('already-leader');
    expect(cluster.node(1).transferLeadership(7)).toBe('not-a-voter');
    expect(cluster.node(2).transferLeadership(3)).toBe('not-leader');
    cluster.stabilize();
    expect(cluster.leader()).toBe(1);
    expect(cluster.node(1).leadTransferee).toBe(0);
  });

  it('a second transfer during one: the same target is already in progress; another target replaces it', () => {
    const cluster = elected(new Cluster({ ids: [1, 2, 3] }));
    // Node 2 lags, so its transfer waits to catch it up; node 3 is ready at once.
    cluster.cut(1, 2);
    cluster.propose(1, 'a');
    expect(cluster.node(1).transferLeadership(2)).toBe('started');
    expect(cluster.node(1).transferLeadership(2)).toBe('in-progress');
    expect(cluster.node(1).transferLeadership(3)).toBe('started');
    expect(cluster.node(1).leadTransferee).toBe(3);
    cluster.recover();
    cluster.stabilize();
    expect(cluster.leader()).toBe(3);
  });

  it('a transfer that does not finish within an election timeout is abandoned, and proposals resume', () => {
    const cluster = elected(new Cluster({ ids: [1, 2, 3] }));
    cluster.cut(1, 3);
    expect(cluster.node(1).transferLeadership(3)).toBe('started');
    tickAll(cluster, ELECTION, [2, 3]);
    expect(cluster.node(1).leadTransferee).toBe(0);
    expect(cluster.node(1).role).toBe('leader');
    expect(cluster.propose(1, 'after').kind).toBe('appended');
  });
});

describe('ReadIndex', () => {
  it('records the commit index, confirms leadership with a heartbeat round, and serves once applied that far', () => {
    const cluster = elected(new Cluster({ ids: [1, 2, 3] }));
    cluster.propose(1, 'a');
    const commit = cluster.node(1).log.committed;
    cluster.node(1).readIndex(42);
    // Nothing until the round: a deposed leader would otherwise serve a stale read.
    cluster.cut(1, 2);
    cluster.cut(1, 3);
    cluster.stabilize();
    expect(cluster.reads).toEqual([]);
    cluster.recover();
    tickAll(cluster, 1);
    expect(cluster.reads).toEqual([{ id: 1, context: 42, index: commit }]);
    expect(cluster.node(1).log.applied).toBeGreaterThanOrEqual(commit);
  });

  it('a new leader serves no read before it has committed an entry of its own term', () => {
    const cluster = elected(new Cluster({ ids: [1, 2, 3] }));
    cluster.propose(1, 'a');
    // Node 2 wins but its first entry cannot commit: 1 and 3 do not hear from it.
    tickAll(cluster, ELECTION, [1, 2, 3]);
    cluster.cut(2, 1);
    cluster.cut(2, 3);
    cluster.onDeliver = (m) => (m.from === 2 && m.type === 'app' ? undefined : m);
    cluster.recover();
    tickAll(cluster, ELECTION, [1]);
    cluster.node(2).campaign();
    cluster.stabilize();
    const leader = cluster.node(2);
    expect(leader.role).toBe('leader');
    expect(leader.log.term(leader.log.committed)).not.toBe(leader.term);
    leader.readIndex(1);
    tickAll(cluster, 2, [1, 3]);
    expect(cluster.reads).toEqual([]);
    cluster.onDeliver = undefined;
    tickAll(cluster, 1, [1, 3]);
    expect(cluster.reads).toEqual([{ id: 2, context: 1, index: leader.log.committed }]);
    expect(leader.log.term(leader.log.committed)).toBe(leader.term);
  });

  it('a read on a follower is forwarded to the leader for its index, then served locally', () => {
    const cluster = elected(new Cluster({ ids: [1, 2, 3] }));
    cluster.propose(1, 'a');
    cluster.node(3).readIndex(9);
    cluster.stabilize();
    expect(cluster.reads).toEqual([{ id: 3, context: 9, index: cluster.node(1).log.committed }]);
    expect(cluster.delivered.some((m) => m.type === 'readIndex' && m.from === 3)).toBe(true);
  });

  it('many reads share one heartbeat round', () => {
    const cluster = elected(new Cluster({ ids: [1, 2, 3] }));
    const before = cluster.delivered.filter((m) => m.type === 'heartbeat').length;
    for (let i = 1; i <= 100; i++) cluster.node(1).readIndex(i);
    cluster.stabilize();
    expect(cluster.reads).toHaveLength(100);
    expect(cluster.delivered.filter((m) => m.type === 'heartbeat').length - before).toBe(2);
  });
});

describe('Leases', () => {
  it('lease reads only with check-quorum: without it, a lease read takes a heartbeat round', () => {
    for (const checkQuorum of [true, false]) {
      const { cluster } = leaseCluster({ checkQuorum });
      elected(cluster);
      tickAll(cluster, 1); // a confirmed round starts a lease (when there can be one)
      cluster.isolate(1);
      cluster.node(1).readIndex(5, 'lease');
      cluster.stabilize();
      expect(cluster.reads.length).toBe(checkQuorum ? 1 : 0);
    }
  });

  it('the lease runs on the monotonic clock from when the confirming round was sent, less the drift margin, not by ticks', () => {
    const { cluster, clock } = leaseCluster();
    elected(cluster);
    clock.now = 1_000;
    tickAll(cluster, 1); // round sent and confirmed at 1,000 ms
    cluster.isolate(1);
    // (electionTicks - 1) × tick - margin = 90 - 20 = 70 ms from 1,000.
    clock.now = 1_069;
    cluster.node(1).readIndex(1, 'lease');
    cluster.stabilize();
    expect(cluster.reads.map((r) => r.context)).toEqual([1]);
    // No tick happened, but time did (a GC pause): the lease is over.
    clock.now = 1_070;
    cluster.node(1).readIndex(2, 'lease');
    cluster.stabilize();
    expect(cluster.reads.map((r) => r.context)).toEqual([1]);
  });

  it('the lease ends when a leader transfer starts', () => {
    const { cluster, clock } = leaseCluster();
    elected(cluster);
    clock.now = 500;
    tickAll(cluster, 1);
    cluster.cut(1, 3);
    expect(cluster.node(1).transferLeadership(3)).toBe('started');
    cluster.isolate(1);
    cluster.node(1).readIndex(1, 'lease');
    cluster.stabilize();
    expect(cluster.reads).toEqual([]);
  });
});

describe('Proposals', () => {
  it('a proposal during a leader transfer or with no leader is refused, not lost', () => {
    const cluster = new Cluster({ ids: [1, 2, 3] });
    expect(cluster.node(2).propose([new Uint8Array([1])])).toEqual({
      kind: 'refused',
      reason: 'no-leader',
      leader: 0,
    });
    elected(cluster);
    cluster.isolate(3);
    cluster.node(1).transferLeadership(3);
    expect(cluster.node(1).propose([new Uint8Array([1])])).toEqual({
      kind: 'refused',
      reason: 'transferring',
      leader: 1,
    });
  });
});
