// Every error the node answers a client with, as one gRPC status: the mapping that
// `proto/raftcache.proto` documents, kept in one table. Errors carry a stable `code` from a
// closed set (the cache's in src/cache/errors.ts, the shard host's in src/shard/errors.ts,
// the wire's in ./errors.ts); the table is typed over that set, so a new code without a
// status fails the type check. Anything without a known code is a bug, answered INTERNAL
// without its details.
import * as grpc from '@grpc/grpc-js';
import type { CacheErrorCode } from '../cache/errors.ts';
import type { RefusalCode } from '../cache/index.ts';
import type { ShardErrorCode } from '../shard/errors.ts';
import type { ProtocolErrorCode } from './errors.ts';
import { LEADER_METADATA_KEY } from './metadata.ts';

/** Every error code the node may answer with. */
export type ErrorCode = CacheErrorCode | ShardErrorCode | RefusalCode | ProtocolErrorCode;

export const STATUS_OF_CODE: Readonly<Record<ErrorCode, grpc.status>> = {
  // Bad input: the message names the problem.
  MALFORMED_REQUEST: grpc.status.INVALID_ARGUMENT,
  REQUEST_TOO_LARGE: grpc.status.INVALID_ARGUMENT,
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
  // Never applied: retry later, or at another replica.
  NO_LEADER: grpc.status.UNAVAILABLE,
  SHARD_OVERLOADED: grpc.status.UNAVAILABLE,
  NODE_NOT_READY: grpc.status.UNAVAILABLE,
  HOST_CLOSED: grpc.status.UNAVAILABLE,
  STALENESS_EXCEEDED: grpc.status.UNAVAILABLE,
  // This node's replica of the shard failed and stopped: another replica serves.
  REPLICA_FAILED: grpc.status.UNAVAILABLE,
  // A write that reached the log and may or may not have applied: retry with the same write id.
  OUTCOME_UNKNOWN: grpc.status.UNKNOWN,
  // The write's session is gone (expired, or never opened): it did not apply; open a new one.
  SESSION_EXPIRED: grpc.status.ABORTED,
  // A record of a newer format than this build reads.
  UNSUPPORTED_FORMAT: grpc.status.UNIMPLEMENTED,
  // Never a request's fault: bugs, and failures of the node's own machinery.
  SNAPSHOT_CORRUPT: grpc.status.INTERNAL,
  SNAPSHOT_IN_PROGRESS: grpc.status.INTERNAL,
  PLUGIN_NOT_FOUND: grpc.status.INTERNAL,
  INVALID_PLUGIN: grpc.status.INTERNAL,
  INVARIANT: grpc.status.INTERNAL,
};

/** Whether `code` is one of the node's error codes (own keys only: not `constructor`). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(STATUS_OF_CODE, code);
}

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
  const coded: CodedError = typeof error === 'object' && error !== null ? error : {};
  const metadata = new grpc.Metadata();
  if (!isErrorCode(coded.code)) {
    return { code: grpc.status.INTERNAL, details: 'internal error', metadata };
  }
  const code = STATUS_OF_CODE[coded.code];
  // Internal failures keep their details (paths, state) from the client; the code says which.
  if (code === grpc.status.INTERNAL) {
    return { code, details: `internal error (${coded.code})`, metadata };
  }
  if (coded.code === 'NOT_LEADER' && typeof coded.leaderNode === 'string') {
    const address = addressOf(coded.leaderNode);
    if (address) metadata.set(LEADER_METADATA_KEY, address);
  }
  return { code, details: String(coded.message ?? coded.code), metadata };
}
