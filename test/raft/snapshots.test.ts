/**
 * The compaction, snapshot and flow-control lines of shared/references/raft-checklist.md,
 * and restarts at every boundary of taking and installing a snapshot.
 */
import { describe, expect, it } from 'vitest';
import type { MemoryLogStorage } from '../../src/raft/log-storage.ts';
import { RaftNode } from '../../src/raft/raft.ts';
import { SeededRandom } from '../../src/raft/random.ts';
import { message, NONE } from '../../src/raft/types.ts';
import { Cluster, type ClusterOptions } from '../support/cluster.ts';

function elected(options: Partial<ClusterOptions> = {}): Cluster {
  const cluster = new Cluster({ ids: [1, 2, 3], ...options });
  cluster.campaign(1);
  expect(cluster.leader()).toBe(1);
  return cluster;
}

function proposeMany(cluster: Cluster, count: number, prefix = 'v'): void {
  for (let i = 0; i < count; i++) cluster.propose(1, `${prefix}${i}`);
}

/** The storage's snapshot, first index and hard state agree, and a node starts from them. */
function expectConsistentAfterRestart(storage: MemoryLogStorage): RaftNode {
  const snapshot = storage.snapshot();
  expect(storage.firstIndex() - 1).toBeLessThanOrEqual(snapshot.index);
  expect(storage.term(snapshot.index)).toBe(snapshot.term);
  const node = new RaftNode({
    id: 3,
    voters: [1, 2, 3],
    storage,
    random: new SeededRandom(3),
    electionTicks: 10,
    heartbeatTicks: 1,
    applied: snapshot.index,
  });
  expect(node.log.committed).toBeGreaterThanOrEqual(snapshot.index);
  expect(node.log.term(snapshot.index)).toBe(snapshot.term);
  expect(node.log.lastIndex()).toBeGreaterThanOrEqual(snapshot.index);
  return node;
}

describe('Snapshots and compaction (§7)', () => {
  it('a snapshot replaces a log prefix: compacted entries are gone, the log after it stays', () => {
    const cluster = elected();
    proposeMany(cluster, 10);
    const leader = cluster.host(1);
    const last = leader.node.log.lastIndex();
    leader.takeSnapshot(2);
    const snapshot = leader.storage.snapshot();
    expect(snapshot.index).toBe(last);
    expect(leader.storage.firstIndex()).toBe(last - 1);
    expect(leader.node.log.term(last - 3)).toBeUndefined();
    expect(leader.node.log.term(last)).toBe(snapshot.term);
  });

  it('a follower behind the compacted prefix gets the snapshot, then the entries after it', () => {
    const cluster = elected();
    cluster.isolate(3);
    proposeMany(cluster, 10, 'old');
    cluster.host(1).takeSnapshot();
    cluster.propose(1, 'after');
    cluster.recover();
    cluster.tick(1);
    cluster.stabilize();
    const snaps = cluster.delivered.filter((m) => m.type === 'snap');
    expect(snaps.map((m) => [m.from, m.to])).toEqual([[1, 3]]);
    // The message says which snapshot; the data went on the snapshot path.
    expect(snaps[0].entries).toEqual([]);
    expect(snaps[0].snapshot?.index).toBe(cluster.host(1).storage.snapshot().index);
    const follower = cluster.host(3);
    expect(follower.storage.snapshot().index).toBe(snaps[0].snapshot?.index);
    expect(cluster.appliedText(3)).toEqual(['after']);
    expect(follower.appliedIndex).toBe(cluster.host(1).appliedIndex);
    expect(follower.stateHash).toBe(cluster.host(1).stateHash);
  });

  it('a snapshot older than what a node has is ignored', () => {
    const cluster = elected();
    proposeMany(cluster, 5);
    const follower = cluster.node(2);
    const committed = follower.log.committed;
    const lastIndex = follower.log.lastIndex();
    follower.step(
      message({
        type: 'snap',
        from: 1,
        to: 2,
        term: follower.term,
        snapshot: { index: 2, term: 1, conf: { voters: [1, 2, 3], learners: [] } },
      }),
    );
    expect(follower.log.pendingSnapshot()).toBeUndefined();
    expect([follower.log.committed, follower.log.lastIndex()]).toEqual([committed, lastIndex]);
    const [answer] = follower.ready().messages;
    expect([answer.type, answer.index, answer.reject]).toEqual(['appResp', committed, false]);
  });
});

describe('Flow control', () => {
  it('probe: one append in flight until the follower answers', () => {
    const cluster = elected();
    cluster.isolate(3);
    cluster.node(1).reportUnreachable(3);
    const progress = cluster.node(1).progress(3);
    expect(progress?.state).toBe('probe');
    cluster.propose(1, 'a');
    cluster.propose(1, 'b');
    cluster.propose(1, 'c');
    // Sent to 3: the first append only (dropped on the way); the others wait for its answer.
    const leader = cluster.node(1);
    expect(progress?.isPaused()).toBe(true);
    const ready = leader.ready();
    expect(ready.messages.filter((m) => m.to === 3)).toEqual([]);
    leader.advance(ready);
  });

  it('replicate: appends stream up to a bounded window, kept in a ring buffer', () => {
    const cluster = elected({ maxInflightAppends: 4 });
    cluster.ignore('appResp');
    for (let i = 0; i < 10; i++) cluster.node(1).propose([new Uint8Array([i])]);
    cluster.stabilize();
    const progress = cluster.node(1).progress(2);
    expect(progress?.state).toBe('replicate');
    expect(progress?.inflights.count).toBe(4);
    const withEntries = cluster.delivered.filter(
      (m) => m.to === 2 && m.type === 'app' && m.entries.length > 0,
    );
    // One append from the election, then the window of four: never more.
    expect(withEntries.length).toBeLessThanOrEqual(5);
  });

  it('snapshot: nothing is sent to the follower until the snapshot is reported; other followers are not held up', () => {
    const cluster = elected();
    cluster.isolate(3);
    proposeMany(cluster, 5);
    cluster.host(1).takeSnapshot();
    cluster.recover();
    cluster.holdSnapshots = true; // the transfer is still streaming
    cluster.tick(1);
    cluster.stabilize();
    const progress = cluster.node(1).progress(3);
    expect(progress?.state).toBe('snapshot');
    expect(cluster.heldSnapshots).toHaveLength(1);
    const before = cluster.delivered.length;
    cluster.propose(1, 'to-2');
    cluster.tick(1);
    cluster.stabilize();
    const sent = cluster.delivered.slice(before);
    expect(sent.some((m) => m.to === 2 && m.type === 'app' && m.entries.length > 0)).toBe(true);
    expect(sent.some((m) => m.to === 3 && m.type === 'app')).toBe(false);
    cluster.releaseSnapshots();
    cluster.tick(1);
    cluster.stabilize();
    expect(progress?.state).not.toBe('snapshot');
    expect(cluster.node(3).log.lastIndex()).toBe(cluster.node(1).log.lastIndex());
    expect(cluster.appliedText(3)).toEqual(['to-2']);
  });

  it('a failed snapshot transfer is retried', () => {
    const cluster = elected();
    cluster.isolate(3);
    proposeMany(cluster, 5);
    cluster.host(1).takeSnapshot();
    cluster.recover();
    cluster.ignore('snap');
    cluster.tick(1);
    cluster.stabilize();
    expect(cluster.node(3).log.lastIndex()).toBeLessThan(cluster.node(1).log.lastIndex());
    cluster.recover();
    cluster.tick(1);
    cluster.stabilize();
    expect(cluster.delivered.filter((m) => m.type === 'snap').length).toBe(1);
    expect(cluster.host(3).stateHash).toBe(cluster.host(1).stateHash);
  });

  it('at most maxBytesPerAppend of entries per append message (one entry always fits)', () => {
    const cluster = elected({ maxBytesPerAppend: 100 });
    cluster.isolate(3);
    for (let i = 0; i < 20; i++) cluster.node(1).propose([new Uint8Array(30)]);
    cluster.stabilize();
    cluster.recover();
    cluster.tick(1);
    cluster.stabilize();
    const appends = cluster.delivered.filter(
      (m) => m.to === 3 && m.type === 'app' && m.entries.length > 0,
    );
    for (const m of appends)
      expect(m.entries.reduce((sum, e) => sum + e.data.byteLength + 16, 0)).toBeLessThanOrEqual(
        100,
      );
    expect(cluster.node(3).log.lastIndex()).toBe(cluster.node(1).log.lastIndex());
  });

  it('a leader cut off from its followers refuses proposals past the uncommitted-bytes limit instead of growing', () => {
    const cluster = elected({ maxUncommittedBytes: 1_000 });
    cluster.isolate(1);
    const results = Array.from({ length: 30 }, () =>
      cluster.node(1).propose([new Uint8Array(100)]),
    );
    expect(results.filter((r) => r.kind === 'appended')).toHaveLength(10);
    expect(results.at(-1)).toEqual({ kind: 'refused', reason: 'overloaded', leader: 1 });
    expect(cluster.node(1).uncommittedBytes()).toBe(1_000);
    // A proposal of any size goes through when nothing is pending.
    cluster.recover();
    cluster.tick(1);
    cluster.stabilize();
    expect(cluster.node(1).uncommittedBytes()).toBe(0);
    expect(cluster.node(1).propose([new Uint8Array(5_000)]).kind).toBe('appended');
  });

  it('a heartbeat response resumes a paused follower', () => {
    const cluster = elected();
    cluster.ignore('appResp');
    cluster.node(1).propose([new Uint8Array([1])]);
    cluster.stabilize();
    cluster.recover();
    const progress = cluster.node(1).progress(2);
    progress?.becomeProbe();
    progress?.sentEntries(cluster.node(1).log.lastIndex());
    expect(progress?.isPaused()).toBe(true);
    cluster.tick(1);
    cluster.stabilize();
    expect(progress?.isPaused()).toBe(false);
    expect(progress?.match).toBe(cluster.node(1).log.lastIndex());
  });

  it('the host can report a follower unreachable: the leader stops streaming to it and probes', () => {
    const cluster = elected();
    proposeMany(cluster, 2);
    expect(cluster.node(1).progress(2)?.state).toBe('replicate');
    cluster.node(1).reportUnreachable(2);
    expect(cluster.node(1).progress(2)?.state).toBe('probe');
  });

  it('a transfer to a follower that needs a snapshot waits for it, then hands over', () => {
    const cluster = elected();
    cluster.isolate(3);
    proposeMany(cluster, 5);
    cluster.host(1).takeSnapshot();
    cluster.recover();
    expect(cluster.node(1).transferLeadership(3)).toBe('started');
    cluster.stabilize();
    expect(cluster.leader()).toBe(3);
    expect(cluster.host(3).stateHash).toBe(cluster.host(1).stateHash);
  });
});

describe('Restarts at every snapshot boundary', () => {
  /** A follower's storage and the snapshot it is about to install, from a real group. */
  function followerAboutToInstall() {
    const cluster = elected();
    cluster.isolate(3);
    proposeMany(cluster, 6);
    cluster.host(1).takeSnapshot();
    cluster.recover();
    cluster.onDeliver = (m) => (m.type === 'snap' ? undefined : m);
    cluster.tick(1);
    cluster.stabilize();
    const snapshot = cluster.host(1).storage.snapshot();
    return { cluster, storage: cluster.host(3).storage, snapshot };
  }

  it('taking a snapshot: just before, between recording it and compacting, and just after', () => {
    const cluster = elected();
    proposeMany(cluster, 6);
    const host = cluster.host(3);
    expectConsistentAfterRestart(host.storage); // before
    host.storage.createSnapshot(host.appliedIndex, { voters: [1, 2, 3], learners: [] });
    expectConsistentAfterRestart(host.storage); // recorded, not compacted
    host.storage.compact(host.appliedIndex);
    const node = expectConsistentAfterRestart(host.storage); // after
    expect(node.log.firstIndex()).toBe(host.appliedIndex + 1);
  });

  it('installing a snapshot: just before, after persisting the snapshot but not the hard state, and just after', () => {
    const { storage, snapshot } = followerAboutToInstall();
    expect(storage.snapshot().index).toBeLessThan(snapshot.index);
    expectConsistentAfterRestart(storage); // before
    const hardState = storage.hardState();
    storage.applySnapshot(snapshot);
    storage.setHardState({ ...hardState, commit: hardState.commit }); // the hard state written before it
    const during = expectConsistentAfterRestart(storage);
    expect(during.log.committed).toBe(snapshot.index);
    storage.setHardState({ ...hardState, commit: snapshot.index, vote: NONE });
    const after = expectConsistentAfterRestart(storage);
    expect(after.log.firstIndex()).toBe(snapshot.index + 1);
  });

  it('a restarted follower with a snapshot catches up and applies the same state', () => {
    const { cluster } = followerAboutToInstall();
    cluster.onDeliver = undefined;
    cluster.tick(1);
    cluster.stabilize();
    cluster.crash(3);
    cluster.propose(1, 'while-down');
    cluster.restart(3);
    cluster.tick(1);
    cluster.stabilize();
    expect(cluster.host(3).appliedIndex).toBe(cluster.host(1).appliedIndex);
    expect(cluster.host(3).stateHash).toBe(cluster.host(1).stateHash);
  });
});
