// Errors of the multi-raft host. Each class has a stable `code` that the server maps to one
// gRPC status (src/protocol/status.ts, as proto/raftcache.proto documents): NOT_LEADER to
// FAILED_PRECONDITION with the leader's address in metadata; NO_LEADER, SHARD_OVERLOADED,
// NODE_NOT_READY, HOST_CLOSED, STALENESS_EXCEEDED and REPLICA_FAILED to UNAVAILABLE; OUTCOME_UNKNOWN to
// UNKNOWN; UNKNOWN_SHARD and CROSS_SHARD to INVALID_ARGUMENT.

/** Every code a `ShardError` may carry: a closed set, each mapped to one gRPC status. */
export type ShardErrorCode =
  | 'NOT_LEADER'
  | 'NO_LEADER'
  | 'OUTCOME_UNKNOWN'
  | 'SHARD_OVERLOADED'
  | 'UNKNOWN_SHARD'
  | 'CROSS_SHARD'
  | 'HOST_CLOSED'
  | 'NODE_NOT_READY'
  | 'STALENESS_EXCEEDED'
  | 'REPLICA_FAILED';

export class ShardError extends Error {
  readonly code: ShardErrorCode;
  readonly shardId: number;

  constructor(code: ShardErrorCode, shardId: number, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.shardId = shardId;
  }
}

/** This replica does not lead its shard; the leader is named when this node knows it. */
export class NotLeaderError extends ShardError {
  readonly leaderReplica: number;
  readonly leaderNode: string | undefined;

  constructor(shardId: number, leaderReplica: number, leaderNode: string | undefined) {
    super(
      'NOT_LEADER',
      shardId,
      `this node does not lead shard ${shardId}; the leader is ${leaderNode ?? 'unknown'}`,
    );
    this.leaderReplica = leaderReplica;
    this.leaderNode = leaderNode;
  }
}

/** The shard has no leader this node knows of (an election is under way): retry later. */
export class NoLeaderError extends ShardError {
  constructor(shardId: number) {
    super('NO_LEADER', shardId, `shard ${shardId} has no leader yet; retry later`);
  }
}

/**
 * The write reached the log but this replica will not see it applied: its entry was
 * overwritten by a new leader, jumped over by a snapshot, or the replica closed (the node
 * shutting down, the replica moved away) first. It may or may not have applied; a retry with
 * the same client id and sequence number applies it at most once.
 */
export class OutcomeUnknownError extends ShardError {
  constructor(shardId: number, index: number, why = '') {
    super(
      'OUTCOME_UNKNOWN',
      shardId,
      `the write proposed at index ${index} of shard ${shardId} may or may not have applied${why && ` (${why})`}`,
    );
  }
}

/** The leader holds too many uncommitted bytes, or is handing leadership over: retry later. */
export class ShardOverloadedError extends ShardError {
  constructor(shardId: number, reason: string) {
    super('SHARD_OVERLOADED', shardId, `shard ${shardId} refused the write (${reason})`);
  }
}

export class UnknownShardError extends ShardError {
  constructor(shardId: number, node: string) {
    super('UNKNOWN_SHARD', shardId, `node ${node} hosts no replica of shard ${shardId}`);
  }
}

/** A multi-key request whose keys live on different shards (use one `{hash tag}`). */
export class CrossShardError extends ShardError {
  constructor(shardId: number, key: string, otherShard: number) {
    super(
      'CROSS_SHARD',
      shardId,
      `key ${JSON.stringify(key)} belongs to shard ${otherShard}, not ${shardId}: keys of one request must share a shard`,
    );
  }
}

/**
 * The replica closed (the node shutting down, the replica moved away) while the request
 * waited, before it reached the log: it never applies; retry elsewhere.
 */
export class HostClosedError extends ShardError {
  constructor(shardId: number) {
    super('HOST_CLOSED', shardId, `the replica of shard ${shardId} on this node has closed`);
  }
}

/**
 * A STALE read's bound: this replica has not heard from its shard's leader within the
 * `max_staleness_ms` the read allows. Another replica may have.
 */
export class StalenessExceededError extends ShardError {
  constructor(shardId: number, sinceLeaderContactMs: number, maxStalenessMs: number) {
    super(
      'STALENESS_EXCEEDED',
      shardId,
      `this replica of shard ${shardId} last heard from its leader ${Math.round(sinceLeaderContactMs)} ms ago, more than the ${maxStalenessMs} ms the read allows`,
    );
  }
}

/**
 * This node's replica of the shard failed (an invariant broke inside it) and stopped; the
 * shard's other replicas serve on: ask them (a refreshed cluster map names its leader).
 */
export class ReplicaFailedError extends ShardError {
  readonly replicaId: number;

  constructor(shardId: number, replicaId: number, reason: string) {
    super(
      'REPLICA_FAILED',
      shardId,
      `replica ${replicaId} of shard ${shardId} on this node has failed (${reason}); ask another replica`,
    );
    this.replicaId = replicaId;
  }
}

/** The node has no cluster map yet (it is still joining or bootstrapping): retry later. */
export class NodeNotReadyError extends ShardError {
  constructor(node: string) {
    super('NODE_NOT_READY', -1, `node ${node} has not joined its cluster yet; retry later`);
  }
}
