import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { EntryTooLargeError, KeyTooLongError } from '../../src/cache/index.ts';
import { MalformedRequestError } from '../../src/protocol/errors.ts';
import { LEADER_METADATA_KEY } from '../../src/protocol/metadata.ts';
import { isErrorCode, STATUS_OF_CODE, toStatus } from '../../src/protocol/status.ts';
import {
  HostClosedError,
  OutcomeUnknownError,
  StalenessExceededError,
} from '../../src/shard/errors.ts';

const addresses = new Map([['n2', '10.1.1.2:7401']]);
const addressOf = (node: string) => addresses.get(node);

describe('errors to gRPC status', () => {
  it('bad input is INVALID_ARGUMENT with a message naming the problem', () => {
    const status = toStatus(new KeyTooLongError(2000, 1024), addressOf);
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toMatch(/2000 bytes; the limit is 1024/);
  });

  it('an entry that can never fit is RESOURCE_EXHAUSTED', () => {
    expect(toStatus(new EntryTooLargeError(9, 8), addressOf).code).toBe(
      grpc.status.RESOURCE_EXHAUSTED,
    );
  });

  it('not the leader is FAILED_PRECONDITION, the leader address in the trailing metadata when known', () => {
    const known = toStatus(
      { code: 'NOT_LEADER', message: 'not leader', leaderNode: 'n2' },
      addressOf,
    );
    expect(known.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(known.metadata.get(LEADER_METADATA_KEY)).toEqual(['10.1.1.2:7401']);
    const unknown = toStatus({ code: 'NOT_LEADER', message: 'not leader' }, addressOf);
    expect(unknown.metadata.get(LEADER_METADATA_KEY)).toEqual([]);
  });

  it('no leader yet is UNAVAILABLE; an unknowable outcome is UNKNOWN', () => {
    expect(toStatus({ code: 'NO_LEADER', message: 'election' }, addressOf).code).toBe(
      grpc.status.UNAVAILABLE,
    );
    expect(toStatus({ code: 'OUTCOME_UNKNOWN', message: 'maybe' }, addressOf).code).toBe(
      grpc.status.UNKNOWN,
    );
  });

  it('anything without a known code is INTERNAL, its details kept from the client', () => {
    const status = toStatus(
      new TypeError('cannot read x of undefined at /srv/secret/path.ts'),
      addressOf,
    );
    expect(status).toMatchObject({ code: grpc.status.INTERNAL, details: 'internal error' });
  });

  it('a replica closing: a write that never reached the log is UNAVAILABLE, one that did is UNKNOWN', () => {
    expect(toStatus(new HostClosedError(3), addressOf).code).toBe(grpc.status.UNAVAILABLE);
    const unknown = toStatus(new OutcomeUnknownError(3, 41, 'its replica closed'), addressOf);
    expect(unknown.code).toBe(grpc.status.UNKNOWN);
    expect(unknown.details).toMatch(/index 41 of shard 3 may or may not have applied/);
  });

  it('a stale read past its bound is UNAVAILABLE (another replica may do); bad wire bytes are INVALID_ARGUMENT', () => {
    expect(toStatus(new StalenessExceededError(2, 900, 500), addressOf)).toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: expect.stringMatching(/900 ms ago, more than the 500 ms/),
    });
    expect(toStatus(new MalformedRequestError('wire type 7'), addressOf).code).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('every code has a status; internal ones hide their details, and prototype names are no codes', () => {
    for (const code of Object.keys(STATUS_OF_CODE)) expect(isErrorCode(code)).toBe(true);
    expect(toStatus({ code: 'INVARIANT', message: 'at /srv/x.ts' }, addressOf)).toMatchObject({
      code: grpc.status.INTERNAL,
      details: 'internal error (INVARIANT)',
    });
    for (const code of ['constructor', 'toString', '__proto__', 'HOST_CLOSED ']) {
      expect(isErrorCode(code)).toBe(false);
      expect(toStatus({ code, message: 'x' }, addressOf).details).toBe('internal error');
    }
  });
});
