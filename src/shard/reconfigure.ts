// How a shard's leader brings its Raft configuration to the replicas the cluster map wants,
// one single-server change at a time (ARCHITECTURE.md, invariant 6): a new replica joins as a
// learner, is promoted once it has caught up, and only then is a replica the map no longer
// wants removed, so the number of up-to-date voters never drops below what it was.

import type { ConfChange } from '../raft/membership.ts';
import type { RaftNode } from '../raft/raft.ts';
import type { NodeId } from '../raft/types.ts';

/** The change to ask of `leader` next to reach `desired`, if one is due now. */
export function nextConfChange(
  leader: RaftNode,
  desired: readonly NodeId[],
): ConfChange | undefined {
  const { voters, learners } = leader;
  const missing = desired.find((id) => !voters.includes(id) && !learners.includes(id));
  if (missing !== undefined) return { type: 'add-learner', id: missing };
  const wanted = learners.filter((id) => desired.includes(id));
  const caughtUp = wanted.find((id) => (leader.progress(id)?.match ?? 0) >= leader.log.committed);
  if (caughtUp !== undefined) return { type: 'add-voter', id: caughtUp };
  if (wanted.length > 0) return undefined;
  const unwanted = [...learners, ...voters].find((id) => !desired.includes(id));
  return unwanted === undefined ? undefined : { type: 'remove', id: unwanted };
}
