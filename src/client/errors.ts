// The SDK's errors: one class per code, each message naming the problem. Every error the SDK
// throws is a `RaftcacheError`, so `error.code` tells them apart in a `switch` as well as
// `instanceof` does.

/** The base of every error the SDK throws. */
export class RaftcacheError extends Error {
  /** A stable name of the problem, e.g. `INVALID_ARGUMENT`. */
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad input: an empty or too long key, a value of the wrong type, a negative TTL, ... */
export class InvalidArgumentError extends RaftcacheError {
  constructor(message: string, options?: ErrorOptions) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/** The shard is full and nothing can be evicted for the write, or the entry can never fit. */
export class CapacityExceededError extends RaftcacheError {
  constructor(message: string, options?: ErrorOptions) {
    super('RESOURCE_EXHAUSTED', message, options);
  }
}

/** The key's shard has no leader, or its nodes cannot be reached, until the deadline passed. */
export class UnavailableError extends RaftcacheError {
  constructor(message: string, options?: ErrorOptions) {
    super('UNAVAILABLE', message, options);
  }
}

/**
 * The node asked does not lead the key's shard. The SDK follows the leader it names by
 * itself; this reaches the caller only when the deadline passed while nodes kept naming
 * leaders that could not be followed.
 */
export class NotLeaderError extends RaftcacheError {
  /** The leader's address, when the node knew it. */
  readonly leader: string | undefined;

  constructor(message: string, leader: string | undefined, options?: ErrorOptions) {
    super('NOT_LEADER', message, options);
    this.leader = leader;
  }
}

/**
 * A write that may or may not have applied: it was sent, and no answer that tells came back
 * before the deadline (or the cluster no longer remembers it). It was never applied twice.
 * Read the key to find out.
 */
export class OutcomeUnknownError extends RaftcacheError {
  constructor(message: string, options?: ErrorOptions) {
    super('OUTCOME_UNKNOWN', message, options);
  }
}

/**
 * The shard no longer holds the session of the write (it expired: unused for 10 minutes, or
 * pushed out by newer ones), so the write did not apply. The SDK opens a new session and
 * retries by itself when no earlier attempt may have applied (else the call rejects with
 * `OutcomeUnknownError`); this reaches the caller only if that kept happening until the
 * deadline.
 */
export class SessionExpiredError extends RaftcacheError {
  constructor(message: string, options?: ErrorOptions) {
    super('SESSION_EXPIRED', message, options);
  }
}

/** A read that got no answer before its deadline. */
export class DeadlineExceededError extends RaftcacheError {
  constructor(message: string, options?: ErrorOptions) {
    super('DEADLINE_EXCEEDED', message, options);
  }
}

/** The cluster does not offer this (yet), or reads a newer format than it knows. */
export class UnsupportedError extends RaftcacheError {
  constructor(message: string, options?: ErrorOptions) {
    super('UNIMPLEMENTED', message, options);
  }
}

/** The server failed in a way it does not explain (a bug), or answered what the SDK cannot read. */
export class InternalError extends RaftcacheError {
  constructor(message: string, options?: ErrorOptions) {
    super('INTERNAL', message, options);
  }
}

/** The client already runs its limit of calls and its waiting queue is full. */
export class BulkheadFullError extends RaftcacheError {
  constructor(maxConcurrency: number, maxQueued: number) {
    super(
      'BULKHEAD_FULL',
      `too many calls at once: ${maxConcurrency} running and ${maxQueued} waiting (the client's maxConcurrency and maxQueued); slow down or raise them`,
    );
  }
}

/** Calls to a node failed so often that the client stopped sending to it for a while. */
export class CircuitOpenError extends RaftcacheError {
  readonly address: string;

  constructor(address: string) {
    super('CIRCUIT_OPEN', `node ${address} failed repeatedly; calls to it are paused`);
    this.address = address;
  }
}

/** No seed (nor any node known before) answered for the cluster map. */
export class ClusterUnreachableError extends RaftcacheError {
  constructor(message: string, options?: ErrorOptions) {
    super('CLUSTER_UNREACHABLE', message, options);
  }
}

/** A call made after `close()`. */
export class ClientClosedError extends RaftcacheError {
  constructor() {
    super('CLIENT_CLOSED', 'the client is closed');
  }
}

/** What became of one shard's part of a multi-key call. */
export type ShardOutcome<T> =
  | {
      readonly shardId: number;
      readonly keys: readonly string[];
      readonly ok: true;
      readonly value: T;
    }
  | {
      readonly shardId: number;
      readonly keys: readonly string[];
      readonly ok: false;
      readonly error: RaftcacheError;
    };

/**
 * A multi-key call over several shards of which some part failed. Each shard's part is atomic
 * on its own; `shards` says, per request, which shard and keys it held and what became of them
 * (an `OutcomeUnknownError` for a write whose outcome cannot be known). An MGET or DEL naming
 * more than `maxKeysPerRequest` keys of one shard sends that shard several requests.
 */
export class PartialFailureError<T = unknown> extends RaftcacheError {
  readonly shards: readonly ShardOutcome<T>[];

  constructor(operation: string, shards: readonly ShardOutcome<T>[]) {
    const failed = shards.filter((s) => !s.ok);
    super(
      'PARTIAL_FAILURE',
      `${operation}: ${failed.length} of ${shards.length} shard requests failed (${failed
        .map((s) => `shard ${s.shardId}: ${s.ok ? '' : s.error.message}`)
        .join('; ')})`,
    );
    this.shards = shards;
  }
}
