import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LIMITS,
  InvalidCommandError,
  InvalidTtlError,
  KeyTooLongError,
  validateCommand,
} from '../../src/cache/index.ts';
import {
  delRequest,
  expireRequest,
  msetRequest,
  outcomeReply,
  setRequest,
  writeIdentity,
} from '../../src/server/requests.ts';

const id = { clientId: 'c', session: 3, seq: 1, lowestPending: 1 };
const limits = { ...DEFAULT_LIMITS, capacityBytes: 1 << 20 };

describe('public API requests to cache commands', () => {
  it('SET: TTL in ms, KEEPTTL, NX/XX and compare-and-set carry over', () => {
    const value = new Uint8Array([1]);
    expect(
      setRequest({ key: 'k', value, ttl_ms: '1500', condition: 'IF_ABSENT', if_version: '7' }, id),
    ).toEqual({
      op: 'set',
      key: 'k',
      value,
      px: 1500,
      condition: 'nx',
      ifVersion: 7,
      writeId: id,
    });
    expect(setRequest({ key: 'k', value, keep_ttl: true, condition: 'IF_PRESENT' }, id)).toEqual({
      op: 'set',
      key: 'k',
      value,
      keepTtl: true,
      condition: 'xx',
      writeId: id,
    });
  });

  it('bad input gets the typed error that names it, here or in the cache validation', () => {
    expect(() => setRequest({ key: 'k', ttl_ms: '-5' }, id)).toThrow(InvalidTtlError);
    expect(() => setRequest({ key: 'k', ttl_ms: 'soon' }, id)).toThrow(InvalidCommandError);
    expect(() => setRequest({ key: 'k', ttl_ms: '100', keep_ttl: true }, id)).toThrow(
      /keep_ttl keeps the current expiry: it takes no ttl_ms/,
    );
    expect(() =>
      validateCommand(setRequest({ key: 'x'.repeat(2000), value: new Uint8Array(1) }, id), limits),
    ).toThrow(KeyTooLongError);
    expect(() =>
      validateCommand(setRequest({ key: '', value: new Uint8Array(1) }, id), limits),
    ).toThrow();
    expect(() => writeIdentity({ client_id: 'c', sequence: 'x' })).toThrow(InvalidCommandError);
  });

  it('DEL, MSET and EXPIRE / PERSIST', () => {
    expect(delRequest({ keys: ['a', 'b'] }, id)).toEqual({
      op: 'del',
      keys: ['a', 'b'],
      writeId: id,
    });
    const value = new Uint8Array([2]);
    expect(msetRequest({ entries: [{ key: 'a', value }], ttl_ms: '10' }, id)).toEqual({
      op: 'mset',
      entries: [{ key: 'a', value }],
      px: 10,
      writeId: id,
    });
    expect(expireRequest({ key: 'a', ttl_ms: '100' }, id)).toEqual({
      op: 'expire',
      key: 'a',
      ttlMs: 100,
      writeId: id,
    });
    expect(expireRequest({ key: 'a', persist: true }, id)).toEqual({
      op: 'expire',
      key: 'a',
      ttlMs: null,
      writeId: id,
    });
  });

  it('a write id is taken whole; a write without one has none (not idempotent)', () => {
    const wire = { client_id: 'app-1', session_id: '7', sequence: '42', lowest_pending: '40' };
    expect(writeIdentity(wire)).toEqual({
      clientId: 'app-1',
      session: 7,
      seq: 42,
      lowestPending: 40,
    });
    expect(writeIdentity(null)).toBeUndefined();
    expect(setRequest({ key: 'k', value: new Uint8Array(1) }, undefined)).not.toHaveProperty(
      'writeId',
    );
  });

  it('a write id with an empty client id, or a zero or inconsistent field, is refused', () => {
    const wire = { client_id: 'app-1', session_id: '7', sequence: '42', lowest_pending: '40' };
    const refused = (patch: object) =>
      expect(() =>
        validateCommand(delRequest({ keys: ['a'] }, writeIdentity({ ...wire, ...patch })), limits),
      ).toThrow(InvalidCommandError);
    validateCommand(delRequest({ keys: ['a'] }, writeIdentity(wire)), limits);
    refused({ client_id: '' });
    // An empty WriteId message, as a client that sets the field but fills nothing sends it.
    refused({
      client_id: undefined,
      session_id: undefined,
      sequence: undefined,
      lowest_pending: undefined,
    });
    refused({ session_id: '0' });
    refused({ sequence: '0' });
    refused({ lowest_pending: '0' });
    refused({ lowest_pending: '43' });
    refused({ sequence: '5000', lowest_pending: '904' });
    refused({ client_id: 'x'.repeat(129) });
  });

  it('outcomes become reply fields', () => {
    expect(outcomeReply({ status: 'applied', version: 12, count: 1 })).toEqual({
      outcome: 'APPLIED',
      version: 12,
    });
    expect(outcomeReply({ status: 'not-applied', reason: 'exists' })).toEqual({
      outcome: 'NOT_APPLIED',
      version: 0,
    });
    expect(outcomeReply({ status: 'unknown' })).toEqual({ outcome: 'UNKNOWN', version: 0 });
  });
});
