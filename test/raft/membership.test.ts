/**
 * The learner and membership lines of shared/references/raft-checklist.md, and rejoining
 * after losing state (invariant 6 of ARCHITECTURE.md).
 */
import { describe, expect, it } from 'vitest';
import type { ConfChange } from '../../src/raft/membership.ts';
import { message, type NodeId } from '../../src/raft/types.ts';
import { Cluster } from '../support/cluster.ts';

function elected(ids: NodeId[] = [1, 2, 3]): Cluster {
  const cluster = new Cluster({ ids });
  cluster.campaign(ids[0]);
  expect(cluster.leader()).toBe(ids[0]);
  return cluster;
}

function change(cluster: Cluster, leader: NodeId, conf: ConfChange) {
  const result = cluster.node(leader).proposeConfChange(conf);
  cluster.stabilize();
  return result;
}

function tickAll(cluster: Cluster, times: number): void {
  for (let i = 0; i < times; i++) {
    for (const id of cluster.hosts.keys()) cluster.tick(id);
    cluster.stabilize();
  }
}

describe('Learners', () => {
  it('a learner receives the log and snapshots, but never campaigns or counts toward a quorum', () => {
    const cluster = elected();
    cluster.propose(1, 'before');
    cluster.host(1).takeSnapshot();
    cluster.join(4);
    expect(change(cluster, 1, { type: 'add-learner', id: 4 }).kind).toBe('appended');
    cluster.propose(1, 'after');
    // Caught up by snapshot, then by log.
    expect(cluster.host(4).stateHash).toBe(cluster.host(1).stateHash);
    expect(cluster.appliedText(4)).toEqual(['after']);
    expect(cluster.node(4).learners).toEqual([4]);

    // Never campaigns, however long it waits.
    cluster.isolate(4);
    cluster.tick(4, 100);
    expect(cluster.node(4).role).toBe('follower');
    expect(cluster.node(4).term).toBe(cluster.node(1).term);

    // Never counts: with two voters of three cut off, nothing commits though the learner has it.
    cluster.recover();
    tickAll(cluster, 1);
    cluster.cut(1, 2);
    cluster.cut(1, 3);
    const committed = cluster.node(1).log.committed;
    cluster.propose(1, 'needs-a-voter');
    expect(cluster.node(4).log.lastIndex()).toBe(cluster.node(1).log.lastIndex());
    expect(cluster.node(1).log.committed).toBe(committed);
  });

  it('a learner is promoted by a configuration change, and then votes and counts', () => {
    const cluster = elected();
    cluster.join(4);
    change(cluster, 1, { type: 'add-learner', id: 4 });
    expect(change(cluster, 1, { type: 'add-voter', id: 4 }).kind).toBe('appended');
    expect(cluster.node(1).voters).toEqual([1, 2, 3, 4]);
    expect(cluster.node(4).voters).toEqual([1, 2, 3, 4]);
    // Now 1 and 4 and one more make a majority of four; 1, 4 alone do not.
    cluster.cut(1, 2);
    cluster.cut(1, 3);
    const committed = cluster.node(1).log.committed;
    cluster.propose(1, 'two-of-four');
    expect(cluster.node(1).log.committed).toBe(committed);
    cluster.recover();
    tickAll(cluster, 1);
    expect(cluster.appliedText(4)).toContain('two-of-four');
  });
});

describe('Membership changes (§4, one server at a time)', () => {
  it('adding and removing a voter', () => {
    const cluster = elected();
    cluster.join(4);
    expect(change(cluster, 1, { type: 'add-voter', id: 4 }).kind).toBe('appended');
    cluster.propose(1, 'with-four');
    expect(cluster.appliedText(4)).toEqual(['with-four']);
    expect(change(cluster, 1, { type: 'remove', id: 2 }).kind).toBe('appended');
    expect(cluster.node(1).voters).toEqual([1, 3, 4]);
    cluster.remove(2);
    cluster.propose(1, 'without-two');
    expect(cluster.appliedText(3)).toEqual(['with-four', 'without-two']);
  });

  it('a new change only after the previous one is committed', () => {
    const cluster = elected();
    cluster.join(4);
    cluster.join(5);
    cluster.cut(1, 2);
    cluster.cut(1, 3);
    expect(change(cluster, 1, { type: 'add-learner', id: 4 }).kind).toBe('appended');
    expect(change(cluster, 1, { type: 'add-learner', id: 5 })).toEqual({
      kind: 'refused',
      reason: 'conf-change-pending',
      leader: 1,
    });
    cluster.recover();
    tickAll(cluster, 1);
    expect(change(cluster, 1, { type: 'add-learner', id: 5 }).kind).toBe('appended');
  });

  it('a new leader proposes no change before it has committed an entry of its own term', () => {
    const cluster = elected();
    cluster.join(4);
    // Node 2 wins, but its first entry cannot commit yet: nobody hears its appends.
    cluster.isolate(1);
    cluster.tick(3, 10);
    cluster.onDeliver = (m) => (m.from === 2 && m.type === 'app' ? undefined : m);
    cluster.campaign(2);
    expect(cluster.node(2).role).toBe('leader');
    expect(change(cluster, 2, { type: 'add-learner', id: 4 })).toEqual({
      kind: 'refused',
      reason: 'conf-change-pending',
      leader: 2,
    });
    cluster.onDeliver = undefined;
    cluster.tick(2);
    cluster.stabilize();
    expect(change(cluster, 2, { type: 'add-learner', id: 4 }).kind).toBe('appended');
  });

  it('a node counts the configuration in its log, committed or not; a truncated change is undone (a change under partition)', () => {
    const cluster = elected([1, 2, 3, 4, 5]);
    cluster.join(6);
    // The leader, cut off with one follower, appends a change that cannot commit.
    for (const id of [3, 4, 5]) {
      cluster.cut(1, id);
      cluster.cut(2, id);
    }
    expect(change(cluster, 1, { type: 'add-voter', id: 6 }).kind).toBe('appended');
    expect(cluster.node(2).voters).toContain(6); // in effect, uncommitted
    expect(cluster.node(1).log.committed).toBeLessThan(cluster.node(1).log.lastIndex());
    // The majority side elects a leader of its own and goes on.
    tickAll(cluster, 20);
    const leader = cluster.leader() as number;
    expect([3, 4, 5]).toContain(leader);
    cluster.propose(leader, 'majority');
    cluster.recover();
    tickAll(cluster, 3);
    // The change was overwritten: nobody counts node 6 any more.
    for (const id of [1, 2, 3, 4, 5]) expect(cluster.node(id).voters).toEqual([1, 2, 3, 4, 5]);
    expect(cluster.appliedText(1)).toEqual(['majority']);
  });

  it('a leader that removes itself leads until the change commits, then steps down; the others go on', () => {
    const cluster = elected();
    expect(change(cluster, 1, { type: 'remove', id: 1 }).kind).toBe('appended');
    expect(cluster.node(1).role).toBe('follower');
    expect(cluster.node(2).voters).toEqual([2, 3]);
    tickAll(cluster, 30);
    const leader = cluster.leader() as number;
    expect([2, 3]).toContain(leader);
    cluster.propose(leader, 'after');
    expect(cluster.appliedText(2)).toContain('after');
  });

  it('a removed node stops acting as a voter and cannot disrupt the group', () => {
    const cluster = elected();
    change(cluster, 1, { type: 'remove', id: 3 });
    const term = cluster.node(1).term;
    // Node 3 knows it was removed: it never campaigns.
    cluster.tick(3, 100);
    expect(cluster.node(3).role).toBe('follower');
    // A removed node that missed its removal campaigns, but the healthy group ignores it.
    const cluster2 = elected();
    cluster2.isolate(3);
    change(cluster2, 1, { type: 'remove', id: 3 });
    cluster2.recover();
    for (let i = 0; i < 60; i++) {
      cluster2.tick(3);
      cluster2.tick(1);
      cluster2.tick(2);
      cluster2.stabilize();
    }
    expect(cluster2.leader()).toBe(1);
    expect(cluster.node(1).term).toBe(term);
  });

  it('a change during a leader transfer is refused', () => {
    const cluster = elected();
    cluster.join(4);
    cluster.isolate(3);
    cluster.propose(1, 'lag');
    expect(cluster.node(1).transferLeadership(3)).toBe('started');
    expect(cluster.node(1).proposeConfChange({ type: 'add-learner', id: 4 })).toEqual({
      kind: 'refused',
      reason: 'transferring',
      leader: 1,
    });
  });

  it('nonsense changes are refused: a voter added twice, removing a non-member or the last voter', () => {
    const cluster = elected([1]);
    for (const bad of [
      { type: 'add-voter', id: 1 },
      { type: 'remove', id: 7 },
      { type: 'remove', id: 1 },
    ] as const) {
      expect(change(cluster, 1, bad)).toEqual({
        kind: 'refused',
        reason: 'invalid-conf-change',
        leader: 1,
      });
    }
  });
});

describe('Rejoining after losing state (invariant 6)', () => {
  it('a node restarted empty comes back as a new incarnation: learner, caught up, promoted; the old one removed', () => {
    const cluster = elected();
    cluster.propose(1, 'a');
    // Node 3's process restarts with nothing: its identity was 3; its new incarnation is 13.
    cluster.remove(3);
    cluster.join(13);
    expect(change(cluster, 1, { type: 'add-learner', id: 13 }).kind).toBe('appended');
    expect(cluster.appliedText(13)).toEqual(['a']);
    expect(change(cluster, 1, { type: 'add-voter', id: 13 }).kind).toBe('appended');
    expect(change(cluster, 1, { type: 'remove', id: 3 }).kind).toBe('appended');
    expect(cluster.node(1).voters).toEqual([1, 2, 13]);
    cluster.propose(1, 'b');
    expect(cluster.appliedText(13)).toEqual(['a', 'b']);
  });

  it('messages addressed to an old incarnation are dropped', () => {
    const cluster = elected();
    cluster.join(13);
    const fresh = cluster.node(13);
    fresh.step(message({ type: 'vote', from: 2, to: 3, term: 9, index: 0, logTerm: 0 }));
    fresh.step(message({ type: 'app', from: 1, to: 3, term: 9, index: 0, logTerm: 0 }));
    expect(fresh.term).toBe(0);
    expect(fresh.hasReady()).toBe(false);
  });

  it('an empty replica that knows no configuration never campaigns, and no vote of its counts', () => {
    const cluster = elected();
    const fresh = cluster.join(13).node;
    for (let i = 0; i < 100; i++) fresh.tick();
    expect(fresh.role).toBe('follower');
    expect(fresh.hasReady()).toBe(false);
    // A candidate counts only its own configuration's voters: 13's grant is not a majority's.
    const candidate = cluster.node(2);
    cluster.isolate(2);
    candidate.campaign();
    expect(candidate.role).toBe('preCandidate');
    candidate.step(message({ type: 'preVoteResp', from: 13, to: 2, term: candidate.term + 1 }));
    expect(candidate.role).toBe('preCandidate');
    candidate.step(message({ type: 'preVoteResp', from: 3, to: 2, term: candidate.term + 1 }));
    expect(candidate.role).toBe('candidate');
  });
});
