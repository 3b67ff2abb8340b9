import { RaftNode } from '../../src/raft/raft.ts';
import type { Entry, Message, NodeId } from '../../src/raft/types.ts';
import type { NodeFactory } from '../support/replica-host.ts';

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

/** The bugs the simulator must catch, each one rule swapped in an otherwise correct node. */
export const PLANTED_BUGS: Readonly<Record<string, NodeFactory>> = {
  'commits a previous-term entry by counting replicas': (c) => new CommitsPreviousTermByCounting(c),
  'grants two votes in one term': (c) => new GrantsTwoVotesInOneTerm(c),
  'skips the up-to-date check': (c) => new SkipsUpToDateCheck(c),
  'truncates on a duplicated append': (c) => new TruncatesOnDuplicateAppend(c),
};
