import type { ConfChange } from '../../src/raft/membership.ts';
import type { RaftNode } from '../../src/raft/raft.ts';
import type { NodeId } from '../../src/raft/types.ts';
import { nextConfChange } from '../../src/shard/reconfigure.ts';

/**
 * A replica being replaced by a new incarnation (`fresh`), as a node's host drives it through
 * the leader (ARCHITECTURE.md, invariant 6): one that lost its state (`old`, on the same node)
 * is removed first, then the fresh one added as a learner and promoted once caught up; one
 * moved to another node is removed last. One change at a time: the leader refuses the next
 * until the previous is committed.
 */
export interface Replacement {
  readonly old: NodeId;
  readonly fresh: NodeId;
  /** The old one lost its state and the fresh one runs where it ran (not a move elsewhere). */
  readonly sameNode: boolean;
}

/** The change to ask `leader` for next, if any is due now: the host's own reconfiguration. */
export function nextReplacementStep(
  leader: RaftNode,
  { old, fresh, sameNode }: Replacement,
): ConfChange | undefined {
  const members = [...leader.voters, ...leader.learners, fresh];
  return nextConfChange(
    leader,
    members.filter((id, i) => id !== old && members.indexOf(id) === i),
    (id) => (sameNode && id === old ? `node of ${fresh}` : `node of ${id}`),
  );
}

/** Whether the replacement is done in the configuration `leader` has committed. */
export function replacementCommitted(leader: RaftNode, { old, fresh }: Replacement): boolean {
  const conf = leader.confStateAt(leader.log.committed);
  return conf.voters.includes(fresh) && !conf.voters.includes(old) && !conf.learners.includes(old);
}
