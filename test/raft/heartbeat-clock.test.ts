// Leaders of many shards on one host heartbeat on the same ticks when they share the host's
// tick count, so their heartbeats to a peer share one frame; and never further apart than
// `heartbeatTicks`.
import { expect, it } from 'vitest';
import { MemoryLogStorage } from '../../src/raft/log-storage.ts';
import { RaftNode } from '../../src/raft/raft.ts';
import { SeededRandom } from '../../src/raft/random.ts';
import { message } from '../../src/raft/types.ts';

const HEARTBEAT = 3;

/** A leader of its own group (voters 1–3), elected now. */
function leader(heartbeatClock?: () => number): RaftNode {
  const node = new RaftNode({
    id: 1,
    voters: [1, 2, 3],
    storage: new MemoryLogStorage(),
    random: new SeededRandom(1),
    electionTicks: 10,
    heartbeatTicks: HEARTBEAT,
    heartbeatClock,
    preVote: false,
    checkQuorum: false,
  });
  node.campaign();
  node.step(message({ type: 'voteResp', from: 2, to: 1, term: 1 }));
  node.advance(node.ready());
  return node;
}

/** The host ticks at which each leader sent heartbeats, over `ticks` ticks. */
function heartbeatTicks(shared: boolean, electedAt: readonly number[], ticks: number) {
  let now = 0;
  const clock = shared ? () => now : undefined;
  const leaders = new Map<number, RaftNode>();
  const sent = electedAt.map(() => [] as number[]);
  for (now = 1; now <= ticks; now++) {
    electedAt.forEach((at, i) => {
      if (at === now) leaders.set(i, leader(clock));
      const node = leaders.get(i);
      if (!node || at === now) return;
      node.tick();
      const ready = node.ready();
      node.advance(ready);
      if (ready.messages.some((m) => m.type === 'heartbeat')) sent[i].push(now);
    });
  }
  return sent;
}

it('leaders sharing the host tick count heartbeat together, every heartbeatTicks ticks', () => {
  const [first, second, third] = heartbeatTicks(true, [1, 2, 4], 20);
  expect(first).toEqual([3, 6, 9, 12, 15, 18]);
  expect(second).toEqual(first);
  // Elected at tick 4, it joins the others at their next heartbeat.
  expect(third).toEqual(first.filter((tick) => tick > 4));
});

it('leaders counting their own ticks heartbeat out of step (what the shared count avoids)', () => {
  const [first, second, third] = heartbeatTicks(false, [1, 2, 4], 20);
  expect(first).toEqual([4, 7, 10, 13, 16, 19]);
  expect(second).toEqual([5, 8, 11, 14, 17, 20]);
  expect(third).toEqual([7, 10, 13, 16, 19]);
});
