// How a shard's leader brings its Raft configuration to the replicas the cluster map wants,
// one single-server change at a time (ARCHITECTURE.md, invariant 6). A replica whose node now
// holds a newer incarnation is dead (the node restarted without its state): it goes first,
// since while it counts as a voter the shard can lose no other. Then a new replica joins as a
// learner, is promoted once it has caught up, and only then is a replica the map no longer
// wants (alive, moved away) removed, so live voters never drop below what they were.

import type { ConfChange } from '../raft/membership.ts';
import type { RaftNode } from '../raft/raft.ts';
import type { NodeId } from '../raft/types.ts';

/**
 * A learner this close to the leader's commit index is promoted: promoting one that lags a
 * little is safe, and under steady writes one may never be exactly level.
 */
const CAUGHT_UP_SLACK = 16;

/**
 * The change to ask of `leader` next to reach `desired`, if one is due now. `nodeOf` names the
 * node of a replica id, old incarnations included.
 */
export function nextConfChange(
  leader: RaftNode,
  desired: readonly NodeId[],
  nodeOf: (id: NodeId) => string | undefined,
): ConfChange | undefined {
  const { voters, learners } = leader;
  const wantedNodes = new Set(desired.map(nodeOf));
  const superseded = [...learners, ...voters].find(
    (id) => !desired.includes(id) && wantedNodes.has(nodeOf(id)),
  );
  if (superseded !== undefined) return { type: 'remove', id: superseded };
  const missing = desired.find((id) => !voters.includes(id) && !learners.includes(id));
  if (missing !== undefined) return { type: 'add-learner', id: missing };
  const wanted = learners.filter((id) => desired.includes(id));
  const caughtUp = wanted.find((id) => {
    const match = leader.progress(id)?.match ?? 0;
    return match > 0 && match + CAUGHT_UP_SLACK >= leader.log.committed;
  });
  if (caughtUp !== undefined) return { type: 'add-voter', id: caughtUp };
  if (wanted.length > 0) return undefined;
  const unwanted = [...learners, ...voters].find((id) => !desired.includes(id));
  return unwanted === undefined ? undefined : { type: 'remove', id: unwanted };
}
