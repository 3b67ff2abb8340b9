// gRPC statuses (as proto/raftcache.proto documents them) and lost answers, as the SDK's
// typed errors. Whether a write may have applied is decided here, once: an error that
// leaves that open is an `OutcomeUnknownError`.
import { status } from '@grpc/grpc-js';
import {
  CapacityExceededError,
  DeadlineExceededError,
  InternalError,
  InvalidArgumentError,
  NotLeaderError,
  OutcomeUnknownError,
  type RaftcacheError,
  SessionExpiredError,
  UnavailableError,
  UnsupportedError,
} from './errors.ts';
import { isWrite, type OpKind } from './operations.ts';

/** The error a node's answer with status `code` stands for. */
export function errorFromStatus(
  code: number,
  message: string,
  leader: string | undefined,
): RaftcacheError {
  switch (code) {
    case status.INVALID_ARGUMENT:
      return new InvalidArgumentError(message);
    case status.RESOURCE_EXHAUSTED:
      return new CapacityExceededError(message);
    case status.FAILED_PRECONDITION:
      return new NotLeaderError(message, leader || undefined);
    case status.UNAVAILABLE:
    case status.CANCELLED:
      return new UnavailableError(message);
    case status.UNKNOWN:
      // The node's OUTCOME_UNKNOWN: the write's log entry was overwritten by a new leader.
      return new OutcomeUnknownError(message);
    case status.ABORTED:
      // SESSION_EXPIRED: the write did not apply.
      return new SessionExpiredError(message);
    case status.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(message);
    case status.UNIMPLEMENTED:
      return new UnsupportedError(message);
    default:
      return new InternalError(`${status[code] ?? `status ${code}`}: ${message}`);
  }
}

/** Errors that say a node failed to answer (rather than answered with an error). */
const nodeFailures = new WeakSet<RaftcacheError>();

/** Whether `error` says the node did not answer: what the circuit breaker counts. */
export function isNodeFailure(error: unknown): boolean {
  return error instanceof Error && nodeFailures.has(error as RaftcacheError);
}

/** The node at `address` could not be reached: the request was not sent. */
export function unreachable(address: string, why: string): RaftcacheError {
  const error = new UnavailableError(`cannot reach ${address}: ${why}`);
  nodeFailures.add(error);
  return error;
}

/**
 * A request that got no answer (timed out, or its connection broke after it was sent): for
 * a write, its outcome is unknown; a read simply failed.
 */
export function noAnswer(op: OpKind, address: string, why: string): RaftcacheError {
  const error = isWrite(op)
    ? new OutcomeUnknownError(
        `${op} sent to ${address} got no answer (${why}): it may or may not have applied`,
      )
    : why === 'timed out'
      ? new DeadlineExceededError(`${op} sent to ${address} got no answer in time`)
      : new UnavailableError(`${op} sent to ${address} got no answer (${why})`);
  nodeFailures.add(error);
  return error;
}
