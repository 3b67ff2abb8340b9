import { status } from '@grpc/grpc-js';
import { expect, it } from 'vitest';
import {
  CapacityExceededError,
  DeadlineExceededError,
  InternalError,
  InvalidArgumentError,
  NotLeaderError,
  OutcomeUnknownError,
  UnavailableError,
  UnsupportedError,
} from '../../src/client/errors.ts';
import { errorFromStatus, isNodeFailure, noAnswer } from '../../src/client/status-errors.ts';

it('each status the cluster documents becomes its own error class, with the message kept', () => {
  const cases: [number, unknown][] = [
    [status.INVALID_ARGUMENT, InvalidArgumentError],
    [status.RESOURCE_EXHAUSTED, CapacityExceededError],
    [status.FAILED_PRECONDITION, NotLeaderError],
    [status.UNAVAILABLE, UnavailableError],
    [status.UNKNOWN, OutcomeUnknownError],
    [status.DEADLINE_EXCEEDED, DeadlineExceededError],
    [status.UNIMPLEMENTED, UnsupportedError],
    [status.INTERNAL, InternalError],
  ];
  for (const [code, type] of cases) {
    const error = errorFromStatus(code, 'what the node said', '10.0.0.1:7401');
    expect(error).toBeInstanceOf(type);
    expect(error.message).toContain('what the node said');
    expect(isNodeFailure(error)).toBe(false);
  }
  expect(
    (errorFromStatus(status.FAILED_PRECONDITION, 'x', '10.0.0.1:7401') as NotLeaderError).leader,
  ).toBe('10.0.0.1:7401');
  expect(
    (errorFromStatus(status.FAILED_PRECONDITION, 'x', '') as NotLeaderError).leader,
  ).toBeUndefined();
});

it('a lost answer leaves a write unknown and fails a read, and counts against the node', () => {
  const write = noAnswer('set', '10.0.0.1:7401', 'connection lost');
  expect(write).toBeInstanceOf(OutcomeUnknownError);
  expect(write.message).toMatch(/may or may not have applied/);
  expect(noAnswer('get', '10.0.0.1:7401', 'timed out')).toBeInstanceOf(DeadlineExceededError);
  expect(noAnswer('mget', '10.0.0.1:7401', 'connection lost')).toBeInstanceOf(UnavailableError);
  expect(isNodeFailure(write)).toBe(true);
});
