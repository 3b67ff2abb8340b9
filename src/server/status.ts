// Every error the node answers a client with, as one gRPC status: the mapping that
// `proto/raftcache.proto` documents, kept in one table. Errors carry a stable `code` (the
// cache's in src/cache/errors.ts, the shard host's in src/shard/errors.ts); anything without
// one is a bug, answered INTERNAL without its details.
import * as grpc from '@grpc/grpc-js';

/** Trailing metadata key naming the leader of the key's shard, on FAILED_PRECONDITION. */
export const LEADER_METADATA_KEY = 'raftcache-leader';

const STATUS_OF_CODE: Readonly<Record<string, grpc.status>> = {
  // Bad input: the message names the problem.
  INVALID_COMMAND: grpc.status.INVALID_ARGUMENT,
  MALFORMED_COMMAND: grpc.status.INVALID_ARGUMENT,
  KEY_TOO_LONG: grpc.status.INVALID_ARGUMENT,
  VALUE_TOO_LARGE: grpc.status.INVALID_ARGUMENT,
  INVALID_TTL: grpc.status.INVALID_ARGUMENT,
  UNKNOWN_SHARD: grpc.status.INVALID_ARGUMENT,
  CROSS_SHARD: grpc.status.INVALID_ARGUMENT,
  // The shard is full, or the entry could never fit in it.
  OVER_CAPACITY: grpc.status.RESOURCE_EXHAUSTED,
  ENTRY_TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
  // Ask the leader instead (its address in the metadata).
  NOT_LEADER: grpc.status.FAILED_PRECONDITION,
  // Retry later.
  NO_LEADER: grpc.status.UNAVAILABLE,
  SHARD_OVERLOADED: grpc.status.UNAVAILABLE,
  NODE_NOT_READY: grpc.status.UNAVAILABLE,
  // This node's replica of the shard failed and stopped: another replica serves.
  REPLICA_FAILED: grpc.status.UNAVAILABLE,
  // A write that may or may not have applied: retry with the same write id.
  OUTCOME_UNKNOWN: grpc.status.UNKNOWN,
  // A record of a newer format than this build reads.
  UNSUPPORTED_FORMAT: grpc.status.UNIMPLEMENTED,
};

/** What the server needs to know of an error: its code, message and, for NOT_LEADER, who leads. */
interface CodedError {
  readonly code?: unknown;
  readonly message?: unknown;
  readonly leaderNode?: unknown;
}

/**
 * The status to answer `error` with. `addressOf` turns a node name into the address clients
 * should use (the advertised one, from the cluster map).
 */
export function toStatus(
  error: unknown,
  addressOf: (node: string) => string | undefined,
): grpc.StatusObject {
  const coded = (typeof error === 'object' && error !== null ? error : {}) as CodedError;
  const code = typeof coded.code === 'string' ? STATUS_OF_CODE[coded.code] : undefined;
  const metadata = new grpc.Metadata();
  if (code === undefined) {
    return { code: grpc.status.INTERNAL, details: 'internal error', metadata };
  }
  if (coded.code === 'NOT_LEADER' && typeof coded.leaderNode === 'string') {
    const address = addressOf(coded.leaderNode);
    if (address) metadata.set(LEADER_METADATA_KEY, address);
  }
  return { code, details: String(coded.message ?? coded.code), metadata };
}
