/**
 * One test per line of the sections "Terms and roles", "Log replication" and "Safety" of
 * shared/references/raft-checklist.md, named by the claim it shows. Single nodes run as the
 * paper describes them (no pre-vote, no check-quorum); groups run with the defaults.
 */
import { describe, expect, it } from 'vitest';
import { MemoryLogStorage } from '../../src/raft/log-storage.ts';
import { RaftNode } from '../../src/raft/raft.ts';
import { SeededRandom } from '../../src/raft/random.ts';
import { type Entry, type Message, message, NONE } from '../../src/raft/types.ts';
import { Cluster } from '../support/cluster.ts';

const ELECTION = 10;
/** The protocol as the paper states it, without pre-vote and check-quorum. */
const PAPER = { preVote: false, checkQuorum: false } as const;

function standalone(id: number, voters = [1, 2, 3], storage = new MemoryLogStorage(), seed = id) {
  return new RaftNode({
    id,
    voters,
    storage,
    random: new SeededRandom(seed),
    electionTicks: ELECTION,
    heartbeatTicks: 1,
    ...PAPER,
  });
}

/** Takes the node's pending messages (persisting nothing: these tests look at one node). */
function drain(node: RaftNode): Message[] {
  const ready = node.ready();
  node.advance(ready);
  return [...ready.messages];
}

function entries(...terms: number[]): Entry[] {
  return terms.map((term, i) => ({
    term,
    index: i + 1,
    type: 'normal',
    data: new Uint8Array([i]),
  }));
}

function storageWith(terms: number[], term = terms.at(-1) ?? 0): MemoryLogStorage {
  const storage = new MemoryLogStorage();
  storage.append(entries(...terms));
  storage.setHardState({ term, vote: NONE, commit: 0 });
  return storage;
}

function electedCluster(ids = [1, 2, 3]): Cluster {
  const cluster = new Cluster({ ids, ...PAPER });
  cluster.campaign(1);
  expect(cluster.leader()).toBe(1);
  return cluster;
}

describe('Terms and roles (§5.1, §5.2)', () => {
  it('a message with a higher term makes follower, candidate and leader alike adopt it and follow; a stale one is not acted on', () => {
    for (const role of ['follower', 'candidate', 'leader'] as const) {
      const cluster = electedCluster();
      const node = role === 'leader' ? cluster.node(1) : cluster.node(2);
      if (role === 'candidate') node.campaign();
      expect(node.role).toBe(role);
      const higher = node.term + 5;
      node.step(message({ type: 'heartbeat', from: 3, to: node.id, term: higher }));
      expect(node.role).toBe('follower');
      expect(node.term).toBe(higher);
      expect(node.lead).toBe(3);
    }

    const cluster = electedCluster();
    cluster.campaign(2);
    const follower = cluster.node(3);
    drain(follower);
    const before = { term: follower.term, last: follower.log.lastIndex(), lead: follower.lead };
    const stale = entries(9).map((e) => ({ ...e, index: before.last + 1 }));
    follower.step(
      message({
        type: 'app',
        from: 1,
        to: 3,
        term: before.term - 1,
        index: before.last,
        logTerm: follower.log.lastTerm(),
        entries: stale,
      }),
    );
    follower.step(
      message({ type: 'vote', from: 1, to: 3, term: before.term - 1, index: 100, logTerm: 100 }),
    );
    expect({ term: follower.term, last: follower.log.lastIndex(), lead: follower.lead }).toEqual(
      before,
    );
    const answers = drain(follower);
    expect(answers.map((m) => [m.type, m.term, m.reject])).toEqual([
      ['appResp', before.term, false],
      ['voteResp', before.term, true],
    ]);
  });

  it('nodes start as followers; a follower whose election timeout passes campaigns: new term, votes for itself, asks every voter', () => {
    const node = standalone(1);
    expect(node.role).toBe('follower');
    expect(node.term).toBe(0);
    for (let i = 0; i < 2 * ELECTION && node.role === 'follower'; i++) node.tick();
    expect(node.role).toBe('candidate');
    expect(node.term).toBe(1);
    expect(node.vote).toBe(1);
    const requests = drain(node);
    expect(requests.map((m) => [m.type, m.to, m.term])).toEqual([
      ['vote', 2, 1],
      ['vote', 3, 1],
    ]);
  });

  it('a round of votes ends in a win, a loss to an existing leader, or a timeout into a new election', () => {
    // Win: a majority grants.
    const winner = standalone(1);
    winner.campaign();
    winner.step(message({ type: 'voteResp', from: 2, to: 1, term: 1 }));
    expect(winner.role).toBe('leader');

    // Loss: an append from a leader of the same term.
    const loser = standalone(1);
    loser.campaign();
    loser.step(message({ type: 'app', from: 3, to: 1, term: 1 }));
    expect([loser.role, loser.lead]).toEqual(['follower', 3]);

    // Loss: a majority refuses.
    const refused = standalone(1);
    refused.campaign();
    refused.step(message({ type: 'voteResp', from: 2, to: 1, term: 1, reject: true }));
    refused.step(message({ type: 'voteResp', from: 3, to: 1, term: 1, reject: true }));
    expect(refused.role).toBe('follower');

    // Unclear: no answers, so the election times out into a new one with a higher term.
    const split = standalone(1);
    split.campaign();
    for (let i = 0; i < 2 * ELECTION && split.term === 1; i++) split.tick();
    expect([split.role, split.term]).toEqual(['candidate', 2]);
  });

  it('a node votes for at most one candidate per term, first come first served; the same candidate asking again gets the same yes; the vote survives a restart', () => {
    const storage = new MemoryLogStorage();
    const voter = standalone(1, [1, 2, 3], storage);
    const ask = (from: number) => message({ type: 'vote', from, to: 1, term: 1 });
    voter.step(ask(2));
    voter.step(ask(3));
    voter.step(ask(2));
    const ready = voter.ready();
    expect(ready.messages.map((m) => [m.to, m.reject])).toEqual([
      [2, false],
      [3, true],
      [2, false],
    ]);
    if (ready.hardState) storage.setHardState(ready.hardState);
    voter.advance(ready);

    const restarted = standalone(1, [1, 2, 3], storage, 99);
    expect(restarted.vote).toBe(2);
    restarted.step(ask(3));
    restarted.step(ask(2));
    expect(drain(restarted).map((m) => [m.to, m.reject])).toEqual([
      [3, true],
      [2, false],
    ]);
  });

  it('election timeouts are randomized per node and per election, within [timeout, 2 × timeout)', () => {
    const ticksToCampaign = (node: RaftNode) => {
      const term = node.term;
      let ticks = 0;
      while (node.term === term) {
        node.tick();
        ticks++;
      }
      return ticks;
    };
    const perNode = [1, 2, 3, 4, 5, 6].map((seed) =>
      ticksToCampaign(standalone(1, [1, 2, 3], undefined, seed)),
    );
    const node = standalone(1, [1, 2, 3], undefined, 42);
    const perElection = [1, 2, 3, 4, 5, 6].map(() => ticksToCampaign(node));
    for (const ticks of [...perNode, ...perElection]) {
      expect(ticks).toBeGreaterThanOrEqual(ELECTION);
      expect(ticks).toBeLessThan(2 * ELECTION);
    }
    expect(new Set(perNode).size).toBeGreaterThan(1);
    expect(new Set(perElection).size).toBeGreaterThan(1);
  });

  it('a leader heartbeats every heartbeat interval; a candidate that hears a legitimate leader steps down', () => {
    const leader = standalone(1);
    leader.campaign();
    leader.step(message({ type: 'voteResp', from: 2, to: 1, term: 1 }));
    drain(leader);
    leader.tick();
    expect(drain(leader).map((m) => [m.type, m.to])).toEqual([
      ['heartbeat', 2],
      ['heartbeat', 3],
    ]);

    const candidate = standalone(2);
    candidate.campaign();
    expect(candidate.role).toBe('candidate');
    candidate.step(message({ type: 'heartbeat', from: 1, to: 2, term: candidate.term }));
    expect([candidate.role, candidate.lead]).toEqual(['follower', 1]);
  });
});

describe('Log replication (§5.3)', () => {
  it('a proposal is appended, persisted and sent with the previous index and term; a follower without a matching entry refuses', () => {
    const cluster = electedCluster();
    const leader = cluster.node(1);
    const prevIndex = leader.log.lastIndex();
    const prevTerm = leader.log.lastTerm();
    const result = leader.propose([new TextEncoder().encode('x')]);
    expect(result).toEqual({
      kind: 'appended',
      term: 1,
      firstIndex: prevIndex + 1,
      lastIndex: prevIndex + 1,
    });
    const ready = leader.ready();
    expect(ready.entries.map((e) => e.index)).toEqual([prevIndex + 1]);
    const appends = ready.messages.filter((m) => m.type === 'app');
    expect(appends.map((m) => [m.to, m.index, m.logTerm, m.entries.length])).toEqual([
      [2, prevIndex, prevTerm, 1],
      [3, prevIndex, prevTerm, 1],
    ]);
    leader.advance(ready);

    const follower = standalone(2);
    follower.step(
      message({ type: 'app', from: 1, to: 2, term: 1, index: 5, logTerm: 1, entries: [] }),
    );
    const [answer] = drain(follower);
    expect([answer.type, answer.reject, answer.index]).toEqual(['appResp', true, 5]);
    expect(follower.log.lastIndex()).toBe(0);
  });

  it('a follower deletes a conflicting entry and all after it; an identical entry already present is never truncated', () => {
    const follower = standalone(2, [1, 2, 3], storageWith([1, 1, 2, 2]));
    // Conflict at index 3 (term 3 against our 2): 3 and 4 go, the new entries take their place.
    const replacement: Entry[] = [{ term: 3, index: 3, type: 'normal', data: new Uint8Array([9]) }];
    follower.step(
      message({ type: 'app', from: 1, to: 2, term: 3, index: 2, logTerm: 1, entries: replacement }),
    );
    expect(termsOf(follower)).toEqual([1, 1, 3]);

    // A late duplicate of an older, shorter append matches and deletes nothing.
    const longer = [
      ...replacement,
      { term: 3, index: 4, type: 'normal' as const, data: new Uint8Array([8]) },
    ];
    follower.step(
      message({ type: 'app', from: 1, to: 2, term: 3, index: 2, logTerm: 1, entries: longer }),
    );
    follower.step(
      message({ type: 'app', from: 1, to: 2, term: 3, index: 2, logTerm: 1, entries: replacement }),
    );
    expect(termsOf(follower)).toEqual([1, 1, 3, 3]);
  });

  it('an entry is committed once on a majority, with every entry before it; the commit index travels in appends and heartbeats; all apply in order', () => {
    const cluster = electedCluster();
    cluster.cut(1, 3);
    cluster.propose(1, 'a');
    cluster.propose(1, 'b');
    const leader = cluster.node(1);
    // On 1 and 2 only: a majority of three.
    expect(leader.log.committed).toBe(leader.log.lastIndex());
    expect(cluster.node(2).log.committed).toBe(leader.log.lastIndex());
    expect(cluster.appliedText(1)).toEqual(['a', 'b']);
    expect(cluster.appliedText(3)).toEqual([]);

    cluster.recover();
    cluster.tick(1);
    cluster.stabilize();
    // Node 3 learned the entries, then the commit index, from the leader's later messages.
    expect(cluster.node(3).log.committed).toBe(leader.log.lastIndex());
    for (const id of [1, 2, 3]) expect(cluster.appliedText(id)).toEqual(['a', 'b']);
    for (const id of [1, 2, 3]) {
      const indexes = cluster.host(id).applied.map((e) => e.index);
      expect(indexes).toEqual(indexes.map((_, i) => i + 1));
    }
  });

  it("the leader brings any follower's log into line with its own (Figure 7, cases a-f)", () => {
    // Figure 7: the leader's log at term 8, and the six followers a-f.
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const followers = [
      [1, 1, 1, 4, 4, 5, 5, 6, 6], // a
      [1, 1, 1, 4], // b
      [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], // c
      [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], // d
      [1, 1, 1, 4, 4, 4, 4], // e
      [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], // f
    ];
    for (const followerLog of followers) {
      const cluster = new Cluster({
        ...PAPER,
        ids: [1, 2, 3],
        logs: new Map([
          [1, { terms: leaderLog, term: 7 }],
          [2, { terms: followerLog, term: 7 }],
          [3, { terms: leaderLog, term: 7 }],
        ]),
      });
      cluster.campaign(1);
      expect(cluster.node(1).term).toBe(8);
      expect(cluster.leader()).toBe(1);
      expect(cluster.logTerms(2)).toEqual([...leaderLog, 8]);
    }
  });

  it('fast backtracking: a rejection carries a hint, so the leader skips a whole term per round trip', () => {
    // Follower f of Figure 7: eleven entries, eight of them wrong, in three terms (2, 3).
    const cluster = new Cluster({
      ...PAPER,
      ids: [1, 2, 3],
      logs: new Map([
        [1, { terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6], term: 7 }],
        [2, { terms: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], term: 7 }],
        [3, { terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6], term: 7 }],
      ]),
    });
    cluster.campaign(1);
    const rejections = cluster.delivered.filter(
      (m) => m.type === 'appResp' && m.reject && m.from === 2,
    );
    // One entry at a time would take eight rejections; one term at a time takes at most two.
    expect(rejections.length).toBeGreaterThan(0);
    expect(rejections.length).toBeLessThanOrEqual(2);
    expect(cluster.logTerms(2)).toEqual(cluster.logTerms(1));
  });
});

describe('Safety (§5.4)', () => {
  it('a vote request carries the last index and term; a voter with a more up-to-date log refuses', () => {
    const voter = standalone(1, [1, 2, 3], storageWith([1, 2, 2]));
    const ask = (from: number, index: number, logTerm: number) =>
      message({ type: 'vote', from, to: 1, term: 5, index, logTerm });
    voter.step(ask(2, 9, 1)); // longer but older last term: refuse
    voter.step(ask(3, 2, 2)); // same last term, shorter: refuse
    expect(drain(voter).map((m) => m.reject)).toEqual([true, true]);
    const candidate = standalone(2);
    candidate.campaign();
    const [request] = drain(candidate);
    expect([request.index, request.logTerm]).toEqual([0, 0]);
    voter.step(ask(2, 3, 2)); // same term, as long: grant
    expect(drain(voter).map((m) => m.reject)).toEqual([false]);
  });

  it('only an entry of the current term commits by counting replicas; earlier ones commit with it, and a new leader appends an empty entry at once (Figure 8)', () => {
    // Node 1 leads term 3 with an entry of term 2 at index 2 that is also on node 2.
    const cluster = new Cluster({
      ...PAPER,
      ids: [1, 2, 3, 4, 5],
      logs: new Map([
        [1, { terms: [1, 2], term: 2 }],
        [2, { terms: [1, 2], term: 2 }],
        [3, { terms: [1], term: 2 }],
        [4, { terms: [1], term: 2 }],
        [5, { terms: [1], term: 2 }],
      ]),
    });
    const leader = cluster.node(1);
    // Appends reach the followers without the new leader's own entry.
    cluster.onDeliver = (m) => (m.type === 'app' ? rewriteToPrefix(m, 2) : m);
    cluster.campaign(1);
    expect(leader.role).toBe('leader');
    // The empty entry of term 3 was appended at once, before any proposal.
    expect(cluster.logTerms(1)).toEqual([1, 2, 3]);
    // Index 2 (term 2) is now on every node, and still not committed.
    for (const id of [2, 3, 4, 5]) expect(cluster.logTerms(id)).toEqual([1, 2]);
    expect(leader.log.committed).toBe(0);
    cluster.onDeliver = undefined;
    cluster.tick(1);
    cluster.stabilize();
    // Once the term-3 entry reaches a majority, it commits, and index 2 with it.
    expect(leader.log.committed).toBe(3);
  });

  it('leader completeness: a new leader holds every entry committed in earlier terms', () => {
    const cluster = electedCluster([1, 2, 3, 4, 5]);
    cluster.cut(1, 4);
    cluster.cut(1, 5);
    cluster.propose(1, 'committed');
    const committed = cluster.node(1).log.committed;
    expect(cluster.appliedText(1)).toEqual(['committed']);
    cluster.crash(1);
    // 4 and 5 lack the entry; whoever wins must have it, so it is one of 2 and 3.
    for (const id of [4, 5, 2]) cluster.campaign(id);
    const leader = cluster.leader() as number;
    expect([2, 3]).toContain(leader);
    expect(cluster.node(leader).log.term(committed)).toBe(cluster.host(1).storage.term(committed));
  });

  it('state-machine safety: no two nodes apply different entries at the same index', () => {
    const cluster = electedCluster([1, 2, 3]);
    cluster.propose(1, 'a');
    cluster.isolate(1);
    cluster.propose(1, 'lost'); // never committed: node 1 is alone
    cluster.campaign(2);
    cluster.propose(2, 'b');
    cluster.recover();
    cluster.tick(2);
    cluster.stabilize();
    for (const id of [1, 2, 3]) expect(cluster.appliedText(id)).toEqual(['a', 'b']);
  });
});

describe('Proposals', () => {
  it('many proposals are batched into one append', () => {
    const cluster = electedCluster();
    const data = Array.from({ length: 50 }, (_, i) => new TextEncoder().encode(`v${i}`));
    const before = cluster.delivered.length;
    cluster.node(1).propose(data);
    cluster.stabilize();
    const appends = cluster.delivered
      .slice(before)
      .filter((m) => m.type === 'app' && m.entries.length > 0);
    expect(appends.map((m) => m.entries.length)).toEqual([50, 50]);
    expect(cluster.appliedText(3)).toHaveLength(50);
  });

  it('a proposal on a follower is forwarded to the leader, or refused with the leader named; with no leader it is refused', () => {
    const cluster = electedCluster();
    expect(cluster.propose(2, 'via-follower')).toEqual({ kind: 'forwarded', leader: 1 });
    expect(cluster.appliedText(1)).toEqual(['via-follower']);

    const refusing = new RaftNode({
      id: 2,
      voters: [1, 2, 3],
      storage: new MemoryLogStorage(),
      random: new SeededRandom(1),
      electionTicks: ELECTION,
      heartbeatTicks: 1,
      forwardProposals: false,
      preVote: false,
    });
    expect(refusing.propose([new Uint8Array([1])])).toEqual({
      kind: 'refused',
      reason: 'no-leader',
      leader: NONE,
    });
    refusing.step(message({ type: 'heartbeat', from: 1, to: 2, term: 1 }));
    expect(refusing.propose([new Uint8Array([1])])).toEqual({
      kind: 'refused',
      reason: 'not-leader',
      leader: 1,
    });
  });
});

function termsOf(node: RaftNode): number[] {
  const terms: number[] = [];
  for (let i = 1; i <= node.log.lastIndex(); i++) terms.push(node.log.term(i) ?? -1);
  return terms;
}

/** The same append, carrying only its entries up to `lastIndex`. */
function rewriteToPrefix(m: Message, lastIndex: number): Message {
  return { ...m, entries: m.entries.filter((e) => e.index <= lastIndex) };
}
