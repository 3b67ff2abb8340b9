import type { RaftConfig } from '../../src/raft/config.ts';
import { Progress } from '../../src/raft/progress.ts';
import { RaftNode } from '../../src/raft/raft.ts';
import type { Entry, Message, NodeId, SnapshotMeta } from '../../src/raft/types.ts';
import type { NodeFactory } from '../support/replica-host.ts';
import type { ViolationKind } from './invariants.ts';
import type { SimulationOptions } from './simulation.ts';

/** Commits an entry of an earlier term by counting replicas (Figure 8's trap). */
class CommitsPreviousTermByCounting extends RaftNode {
  protected override mayCommitByCounting(): boolean {
    return true;
  }
}

/** Grants a vote to every candidate that asks, even a second one in the same term. */
class GrantsTwoVotesInOneTerm extends RaftNode {
  protected override voteIsAvailableFor(_candidate: NodeId): boolean {
    return true;
  }
}

/** Votes without comparing logs. */
class SkipsUpToDateCheck extends RaftNode {
  protected override candidateIsUpToDate(_m: Message): boolean {
    return true;
  }
}

/** Truncates at the start of every append, even when the entries are already there. */
class TruncatesOnDuplicateAppend extends RaftNode {
  protected override firstNewOrConflicting(entries: readonly Entry[]): number {
    return entries.length > 0 ? entries[0].index : 0;
  }
}

/** Serves reads at its commit index without a heartbeat round confirming it still leads. */
class ReadsWithoutHeartbeatRound extends RaftNode {
  protected override readNeedsHeartbeatRound(): boolean {
    return false;
  }
}

/** Trusts its lease even when check-quorum is off (followers are then not sticky). */
class LeaseWithoutCheckQuorum extends RaftNode {
  protected override leaseReadsEnabled(): boolean {
    return true;
  }
}

/** Judges its lease by the time of its last tick: a pause that stops ticks stops the lease clock. */
class LeaseClockedByTicks extends RaftNode {
  readonly #clock: () => number;
  #timeAtLastTick = 0;

  constructor(config: RaftConfig) {
    super(config);
    this.#clock = config.clock ?? (() => 0);
  }

  override tick(): void {
    this.#timeAtLastTick = this.#clock();
    super.tick();
  }

  protected override now(): number {
    return this.#timeAtLastTick;
  }
}

/** Raises its term for every pre-vote, as if pre-vote were a real election. */
class PreVoteRaisesTerm extends RaftNode {
  protected override termDuringPreVote(): number {
    return this.term + 1;
  }
}

/** After installing a snapshot, claims to hold one entry past it. */
class OffByOneAfterSnapshot extends RaftNode {
  protected override matchAfterSnapshot(snapshot: SnapshotMeta): number {
    return snapshot.index + 1;
  }
}

/** Never looks at what was compacted: sends entries from wherever the follower is. */
class SendsCompactedEntries extends RaftNode {
  protected override entriesAvailableFrom(): boolean {
    return true;
  }
}

/** Keeps no real bound on the appends in flight to a follower. */
class UnboundedInflightWindow extends RaftNode {
  protected override newProgress(next: number): Progress {
    return new Progress(next, 1_000_000);
  }
}

/** Lets a second membership change in while the first is still uncommitted. */
class TwoChangesInFlight extends RaftNode {
  protected override mayProposeConfChange(): boolean {
    return true;
  }
}

/** Lets a new leader change the configuration before its first entry of its term commits. */
class ChangesBeforeOwnCommit extends RaftNode {
  protected override pendingConfIndexAtElection(): number {
    return 0;
  }
}

export interface PlantedBug {
  readonly factory: NodeFactory;
  /** Simulation settings the bug needs to matter (e.g. the setting it ignores). */
  readonly options?: Partial<SimulationOptions>;
  /** What the bug breaks: its run must be caught by one of these properties, not any. */
  readonly breaks: readonly ViolationKind[];
  /** When `breaks` names `core-invariant`: the core's own check that must be the one to fire. */
  readonly coreInvariant?: RegExp;
}

/** The log lost entries it had acknowledged: its commit index is now past its last entry. */
const LOST_ENTRIES = /the log lost entries/;

/** The bugs the simulator must catch, each one rule swapped in an otherwise correct node. */
export const PLANTED_BUGS: Readonly<Record<string, PlantedBug>> = {
  'commits a previous-term entry by counting replicas': {
    factory: (c) => new CommitsPreviousTermByCounting(c),
    // A leader's old-term entries must reach a majority before its own: one entry a message.
    options: { oneEntryPerAppend: true },
    // Committed while a node lacking it can still win (and later overwrite it).
    breaks: ['unsafe-commit', 'committed-entry-changed'],
  },
  'grants two votes in one term': {
    factory: (c) => new GrantsTwoVotesInOneTerm(c),
    breaks: ['election-safety'],
  },
  'skips the up-to-date check': {
    factory: (c) => new SkipsUpToDateCheck(c),
    breaks: ['leader-completeness'],
  },
  'truncates on a duplicated append': {
    factory: (c) => new TruncatesOnDuplicateAppend(c),
    // A late duplicate cuts off entries the follower already acknowledged.
    breaks: ['core-invariant', 'commit-without-entry'],
    coreInvariant: LOST_ENTRIES,
  },
  'serves a read without the heartbeat round': {
    factory: (c) => new ReadsWithoutHeartbeatRound(c),
    // A lease read whose lease ran out falls back to the round this bug skips, so a deposed
    // leader's answer shows as a broken lease as well as a stale read.
    breaks: ['stale-read', 'broken-lease'],
  },
  'serves lease reads without check-quorum': {
    factory: (c) => new LeaseWithoutCheckQuorum(c),
    options: { checkQuorum: false, membershipChanges: false },
    breaks: ['broken-lease', 'stale-read'],
  },
  'keeps a lease across a pause longer than the margin allows': {
    factory: (c) => new LeaseClockedByTicks(c),
    breaks: ['broken-lease', 'stale-read'],
  },
  'raises the term in pre-vote': {
    factory: (c) => new PreVoteRaisesTerm(c),
    breaks: ['disruption'],
  },
  'is off by one at the first index after a snapshot': {
    factory: (c) => new OffByOneAfterSnapshot(c),
    // The leader counts an entry the follower lacks, and never sends it: the follower refuses
    // every append after it, at once, round after round.
    breaks: ['message-storm', 'unsafe-commit'],
  },
  'sends entries that were already compacted': {
    factory: (c) => new SendsCompactedEntries(c),
    breaks: ['core-invariant'],
    coreInvariant: /that entry was compacted/,
  },
  'keeps an unbounded in-flight window': {
    factory: (c) => new UnboundedInflightWindow(c),
    breaks: ['inflight-window'],
  },
  // Both membership bugs let two configurations without a common majority decide at once.
  'allows two membership changes in flight': {
    factory: (c) => new TwoChangesInFlight(c),
    breaks: ['unsafe-commit', 'election-safety'],
  },
  'changes membership before a new leader commits in its term': {
    factory: (c) => new ChangesBeforeOwnCommit(c),
    breaks: ['unsafe-commit', 'election-safety'],
  },
  'lets a restarted empty node vote under its old identity': {
    factory: (c) => new RaftNode(c),
    options: { amnesiaKeepsIdentity: true },
    // Its leader still counts what it had: the empty node is told of commits past its log
    // (the check etcd-raft panics on), or its vote elects a leader lacking committed entries.
    breaks: ['core-invariant', 'unsafe-commit', 'leader-completeness'],
    coreInvariant: LOST_ENTRIES,
  },
};

/** The same run with the bug taken out: a correct node, the bug's settings otherwise kept. */
export function withoutBug(bug: PlantedBug): Partial<SimulationOptions> {
  return { ...bug.options, factory: (c) => new RaftNode(c), amnesiaKeepsIdentity: false };
}
