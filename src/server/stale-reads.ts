// How far behind a STALE read may be, as the `.proto`'s `Staleness`, and its bound. A STALE
// read is served by whichever replica it is sent to, from that replica's state as it stands;
// the reply says how current that state is, and a read that names `max_staleness_ms` is
// refused (STALENESS_EXCEEDED, UNAVAILABLE: try another replica) by a replica that has not
// heard from its shard's leader within that many milliseconds.

import { StalenessExceededError } from '../shard/errors.ts';
import type { MultiRaftHost } from '../shard/multi-raft-host.ts';

export interface WireStaleness {
  readonly applied_index: number;
  readonly known_commit_index: number;
  readonly since_leader_contact_ms: number;
}

/**
 * The staleness of this node's replica of `key`'s shard, which has just served a STALE read
 * of it (in the same turn: nothing applied in between); throws `StalenessExceededError` when
 * it last heard from its leader longer ago than `maxStalenessMs`.
 */
export function staleness(
  host: MultiRaftHost,
  key: string,
  maxStalenessMs: number | undefined,
): WireStaleness {
  const shardId = host.shardOf(key);
  const stats = host.stats(shardId);
  const since = Math.max(0, Math.floor(stats.sinceLeaderContactMs));
  if (maxStalenessMs !== undefined && since > maxStalenessMs)
    throw new StalenessExceededError(shardId, since, maxStalenessMs);
  return {
    applied_index: stats.appliedIndex,
    known_commit_index: stats.commitIndex,
    since_leader_contact_ms: since,
  };
}
