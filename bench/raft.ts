/**
 * `npm run bench:raft`: entries per second committed through a 3-node group in memory (no
 * network, no disk), at batch sizes 1, 10 and 100, with heap bytes allocated per entry.
 * What it measures is the core's own cost: the goal is that it never limits a node
 * (at least 1,000,000 entries/s at batch 100).
 */

import { MemoryLogStorage } from '../src/raft/log-storage.ts';
import { RaftNode } from '../src/raft/raft.ts';
import { SeededRandom } from '../src/raft/random.ts';
import type { Message } from '../src/raft/types.ts';
import { measureAllocation } from './support/allocation.ts';
import { printTable, writeResults } from './support/report.ts';

const ENTRY_BYTES = 64;
const ENTRIES_PER_RUN = Number(process.env.BENCH_RAFT_ENTRIES ?? 1_000_000);

interface Member {
  readonly node: RaftNode;
  readonly storage: MemoryLogStorage;
  applied: number;
}

function newGroup(): Member[] {
  const voters = [1, 2, 3];
  return voters.map((id) => {
    const storage = new MemoryLogStorage();
    const node = new RaftNode({
      id,
      voters,
      storage,
      random: new SeededRandom(id),
      electionTicks: 10,
      heartbeatTicks: 1,
    });
    return { node, storage, applied: 0 };
  });
}

/** Runs every member's `Ready` as a host would, delivering messages at once, until quiet. */
function settle(group: Member[]): void {
  let moved = true;
  while (moved) {
    moved = false;
    for (const member of group) {
      if (!member.node.hasReady()) continue;
      moved = true;
      const ready = member.node.ready();
      if (ready.hardState) member.storage.setHardState(ready.hardState);
      member.storage.append(ready.entries);
      member.applied += ready.committedEntries.length;
      member.node.advance(ready);
      deliver(group, ready.messages);
    }
  }
}

function deliver(group: Member[], messages: readonly Message[]): void {
  for (const m of messages) group[m.to - 1].node.step(m);
}

function run(batch: number): { entriesPerSecond: number; bytesPerEntry: number; seconds: number } {
  const group = newGroup();
  const leader = group[0];
  leader.node.campaign();
  settle(group);
  const payload = new Uint8Array(ENTRY_BYTES);
  const proposals = Array.from({ length: batch }, () => payload);
  const rounds = Math.ceil(ENTRIES_PER_RUN / batch);
  const start = performance.now();
  const { allocatedBytes } = measureAllocation(() => {
    for (let i = 0; i < rounds; i++) {
      leader.node.propose(proposals);
      settle(group);
    }
  });
  const seconds = (performance.now() - start) / 1000;
  const entries = rounds * batch;
  for (const member of group) {
    if (member.applied < entries)
      throw new Error(`node ${member.node.id} applied ${member.applied} of ${entries}`);
  }
  return { entriesPerSecond: entries / seconds, bytesPerEntry: allocatedBytes / entries, seconds };
}

console.log(
  `raft core: 3 nodes in memory, ${ENTRIES_PER_RUN.toLocaleString('en-US')} entries of ${ENTRY_BYTES} B per batch size`,
);
run(100); // warm up the JIT before measuring
const results = [1, 10, 100].map((batch) => ({ batch, ...run(batch) }));
printTable(
  results.map((r) => ({
    batch: r.batch,
    'entries/s': Math.round(r.entriesPerSecond),
    'heap B/entry': Math.round(r.bytesPerEntry),
    seconds: r.seconds.toFixed(2),
  })),
);
const goal = results.find((r) => r.batch === 100);
console.log(
  `goal: >= 1,000,000 entries/s at batch 100: ${goal && goal.entriesPerSecond >= 1_000_000 ? 'met' : 'NOT met'}`,
);
console.log(`written to ${writeResults('raft', results)}`);
