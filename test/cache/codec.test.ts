import { isNativeAccelerationEnabled, pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  decodeChunk,
  decodeEntry,
  ENTRY_FORMAT_VERSION,
  encodeChunk,
  encodeEntry,
} from '../../src/cache/codec.ts';
import { type Command, MAX_PENDING_SPAN, NO_WRITE_ID } from '../../src/cache/commands.ts';

const bytes = (text: string) => new Uint8Array(Buffer.from(text));

const everyCommand: Command[] = [
  {
    op: 'set',
    clientId: 'c1',
    session: 4,
    seq: 1,
    lowestPending: 1,
    key: 'k',
    value: bytes('v'),
    expiresAt: 0,
    keepTtl: false,
    condition: 'none',
    ifVersion: 0,
  },
  {
    op: 'set',
    clientId: 'c1',
    session: 4,
    seq: 2,
    lowestPending: 1,
    key: 'k',
    value: bytes('w'),
    expiresAt: 2 ** 41,
    keepTtl: false,
    condition: 'nx',
    ifVersion: 0,
  },
  {
    op: 'set',
    clientId: 'c1',
    session: 4,
    seq: 3,
    lowestPending: 1,
    key: 'k',
    value: new Uint8Array(0),
    expiresAt: 0,
    keepTtl: true,
    condition: 'xx',
    ifVersion: 2 ** 40,
  },
  { op: 'del', clientId: 'c2', session: 5, seq: 9, lowestPending: 9, keys: ['a', 'b'] },
  {
    op: 'mset',
    clientId: 'c2',
    session: 4,
    seq: 10,
    lowestPending: 1,
    keys: ['a', 'b'],
    values: [bytes('1'), bytes('2')],
    expiresAt: 5,
  },
  { op: 'expire', clientId: 'c2', session: 5, seq: 11, lowestPending: 10, key: 'a', expiresAt: 0 },
  { op: 'evict', ...NO_WRITE_ID, key: 'a', version: 7 },
  { op: 'expire-delete', ...NO_WRITE_ID, key: 'b', version: 8 },
  { op: 'open-session', clientId: 'c3' },
  { op: 'del', ...NO_WRITE_ID, keys: ['c'] },
];

describe('entry codec', () => {
  it('runs with msgpackr native acceleration', () => {
    expect(isNativeAccelerationEnabled).toBe(true);
  });

  it('round-trips every command kind, numbers staying numbers', () => {
    const payload = encodeEntry({ at: 1_700_000_000_000, commands: everyCommand });
    expect(payload[0]).toBe(ENTRY_FORMAT_VERSION);
    const decoded = decodeEntry(payload);
    expect(decoded).toEqual({ kind: 'ok', at: 1_700_000_000_000, commands: everyCommand });
  });

  it('copies decoded values out of the payload buffer', () => {
    const payload = encodeEntry({ at: 1, commands: [everyCommand[0]] });
    const decoded = decodeEntry(payload);
    if (decoded.kind !== 'ok' || decoded.commands[0]?.op !== 'set') throw new Error('bad decode');
    const value = decoded.commands[0].value;
    expect(value.buffer).not.toBe(payload.buffer);
    expect(value.buffer.byteLength).toBe(value.byteLength);
  });

  it('refuses an unknown format version without decoding the rest', () => {
    const payload = Buffer.from(encodeEntry({ at: 1, commands: everyCommand }));
    payload[0] = ENTRY_FORMAT_VERSION + 1;
    expect(decodeEntry(payload)).toEqual({
      kind: 'unsupported',
      version: ENTRY_FORMAT_VERSION + 1,
    });
  });

  it('reports undecodable bytes as malformed and bad tuples as null commands', () => {
    expect(decodeEntry(new Uint8Array([ENTRY_FORMAT_VERSION, 0xc1]))).toEqual({
      kind: 'malformed',
    });
    expect(decodeEntry(new Uint8Array([]))).toEqual({ kind: 'malformed' });
    const body = pack([
      5,
      [[1, 'c', 1, 1, 1, 'k'], [99, 'c', 1, 1, 1], [2, 'c', 1, 1, 1, []], 'x'],
    ]);
    const decoded = decodeEntry(Buffer.concat([Buffer.from([ENTRY_FORMAT_VERSION]), body]));
    expect(decoded).toEqual({ kind: 'ok', at: 5, commands: [null, null, null, null] });
  });

  it('refuses write ids that break the session rules, as every replica does', () => {
    const del = (id: unknown[]) => {
      const body = pack([5, [[2, ...id, ['a']]]]);
      const decoded = decodeEntry(Buffer.concat([Buffer.from([ENTRY_FORMAT_VERSION]), body]));
      return decoded.kind === 'ok' ? decoded.commands[0] : decoded;
    };
    expect(del(['c', 3, 7, 5])).toMatchObject({ op: 'del', session: 3, seq: 7, lowestPending: 5 });
    expect(del(['', 0, 0, 0])).toMatchObject({ op: 'del', session: 0 });
    expect(del(['', 3, 7, 5])).toBeNull(); // a session without a client
    expect(del(['c', 0, 7, 5])).toBeNull(); // a client without a session
    expect(del(['c', 3, 7, 8])).toBeNull(); // lowest pending above the write itself
    expect(del(['c', 3, 7, 0])).toBeNull();
    expect(del(['c', 3, MAX_PENDING_SPAN + 1, 1])).toBeNull(); // past the pending span
    expect(del(['c', 3, MAX_PENDING_SPAN, 1])).toMatchObject({ seq: MAX_PENDING_SPAN });
    expect(del(['c', -3, 7, 5])).toBeNull();
  });
});

describe('snapshot chunk codec', () => {
  it('round-trips and detects a flipped byte', () => {
    const chunk = encodeChunk([1, 'x', bytes('abc')]);
    expect(decodeChunk(chunk)).toEqual({ kind: 'ok', body: [1, 'x', bytes('abc')] });
    const damaged = Buffer.from(chunk);
    damaged[damaged.length - 1] ^= 1;
    expect(decodeChunk(damaged)).toMatchObject({
      kind: 'corrupt',
      reason: 'chunk checksum mismatch',
    });
    damaged[0] = 200;
    expect(decodeChunk(damaged)).toEqual({ kind: 'unsupported', version: 200 });
  });
});
