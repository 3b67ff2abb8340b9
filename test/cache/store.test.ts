import { describe, expect, it } from 'vitest';
import { LruPolicy } from '../../plugins/lru/index.ts';
import { expiryCycle } from '../../src/cache/active-expiry.ts';
import { ENTRY_FORMAT_VERSION, encodeEntry } from '../../src/cache/codec.ts';
import {
  type CommandLimits,
  type CommandRequest,
  DEFAULT_LIMITS,
  ENTRY_OVERHEAD_BYTES,
  validateCommand,
  validateReadKeys,
} from '../../src/cache/commands.ts';
import { prepare } from '../../src/cache/prepare.ts';
import { CacheStore } from '../../src/cache/store.ts';
import { mulberry32 } from '../../src/raft/random.ts';

const limits: CommandLimits = {
  ...DEFAULT_LIMITS,
  maxKeyBytes: 8,
  maxValueBytes: 64,
  capacityBytes: 1000,
};
const value = (n: number) => Buffer.alloc(n, 1);

function errorCode(request: unknown): string | undefined {
  try {
    validateCommand(request as CommandRequest, limits);
    return undefined;
  } catch (error) {
    return (error as { code: string }).code;
  }
}

describe('validateCommand', () => {
  it('accepts well-formed requests', () => {
    expect(
      errorCode({
        op: 'set',
        key: 'k',
        value: value(3),
        px: 10,
        condition: 'xx',
        ifVersion: 4,
      }),
    ).toBeUndefined();
    expect(
      errorCode({ op: 'mset', entries: [{ key: 'a', value: value(1) }], px: 5 }),
    ).toBeUndefined();
    expect(errorCode({ op: 'expire', key: 'k', ttlMs: null })).toBeUndefined();
  });

  it('names the problem with a stable code', () => {
    expect(errorCode({ op: 'set', key: 'much-too-long', value: value(1) })).toBe('KEY_TOO_LONG');
    expect(errorCode({ op: 'set', key: '', value: value(1) })).toBe('INVALID_COMMAND');
    expect(errorCode({ op: 'set', key: 'k', value: value(65) })).toBe('VALUE_TOO_LARGE');
    expect(errorCode({ op: 'set', key: 'k', value: 'text' })).toBe('INVALID_COMMAND');
    expect(errorCode({ op: 'set', key: 'k', value: value(1), px: 0 })).toBe('INVALID_TTL');
    expect(errorCode({ op: 'set', key: 'k', value: value(1), px: 5, keepTtl: true })).toBe(
      'INVALID_TTL',
    );
    expect(errorCode({ op: 'set', key: 'k', value: value(1), ex: 1.5 })).toBe('INVALID_TTL');
    expect(errorCode({ op: 'set', key: 'k', value: value(1), condition: 'nx', ifVersion: 3 })).toBe(
      'INVALID_COMMAND',
    );
    expect(errorCode({ op: 'del', keys: [] })).toBe('INVALID_COMMAND');
    expect(
      errorCode({
        op: 'mset',
        entries: [
          { key: 'a', value: value(1) },
          { key: 'a', value: value(2) },
        ],
      }),
    ).toBe('INVALID_COMMAND');
    expect(errorCode({ op: 'expire', key: 'k', ttlMs: 0.5 })).toBe('INVALID_TTL');
    expect(errorCode({ op: 'nope' })).toBe('INVALID_COMMAND');
    const writeId = { clientId: 'c', session: 1, seq: 1, lowestPending: 1 };
    expect(errorCode({ op: 'del', keys: ['a'], writeId })).toBeUndefined();
    expect(errorCode({ op: 'del', keys: ['a'], writeId: { ...writeId, clientId: '' } })).toBe(
      'INVALID_COMMAND',
    );
    expect(errorCode({ op: 'del', keys: ['a'], writeId: { ...writeId, seq: 0 } })).toBe(
      'INVALID_COMMAND',
    );
    expect(errorCode({ op: 'open-session', clientId: '' })).toBe('INVALID_COMMAND');
  });

  it('checks the keys of a read as it checks the keys of a write', () => {
    const readError = (keys: unknown[]) => {
      try {
        validateReadKeys(keys, limits);
        return undefined;
      } catch (error) {
        return (error as { code: string }).code;
      }
    };
    expect(readError(['k', 'é'])).toBeUndefined();
    expect(readError(['k', ''])).toBe('INVALID_COMMAND');
    expect(readError(['much-too-long'])).toBe('KEY_TOO_LONG');
    expect(readError(Array(limits.maxBatchKeys + 1).fill('k'))).toBe('INVALID_COMMAND');
  });

  it('refuses an entry that can never fit in the shard', () => {
    const big = { ...limits, maxValueBytes: 10_000 };
    expect(() => validateCommand({ op: 'set', key: 'k', value: value(1000) }, big)).toThrow(
      /can never fit/,
    );
    const entries = [0, 1, 2, 3].map((i) => ({ key: `k${i}`, value: value(100) }));
    expect(() => validateCommand({ op: 'mset', entries }, big)).toThrow(
      expect.objectContaining({ code: 'ENTRY_TOO_LARGE' }),
    );
  });
});

describe('apply', () => {
  it('refuses an entry of an unknown format version the same way on every replica', () => {
    const payload = Buffer.from(encodeEntry({ at: 1, commands: [] }));
    payload[0] = ENTRY_FORMAT_VERSION + 1;
    const results = [
      new CacheStore({ capacityBytes: 1000 }),
      new CacheStore({ capacityBytes: 1000 }),
    ].map((store) => {
      const result = store.apply(1, payload);
      return { result, applied: store.appliedIndex, keys: store.stats().keys };
    });
    expect(results[0]).toEqual({
      result: { index: 1, outcomes: [], refused: 'UNSUPPORTED_FORMAT' },
      applied: 1,
      keys: 0,
    });
    expect(results[1]).toEqual(results[0]);
  });

  it('refuses garbage without throwing', () => {
    const store = new CacheStore({ capacityBytes: 1000 });
    expect(store.apply(1, Buffer.from([ENTRY_FORMAT_VERSION, 0xc1, 0xff]))).toEqual({
      index: 1,
      outcomes: [],
      refused: 'MALFORMED_COMMAND',
    });
  });

  it('hides expired entries on read without deleting them, and counts hits and misses', () => {
    const store = new CacheStore({ capacityBytes: 10_000 });
    const prepared = prepare(store, [{ op: 'set', key: 'k', value: value(4), px: 100 }], 1000);
    store.apply(1, prepared.payload);
    expect(Buffer.from(store.get('k', 1099) ?? [])).toEqual(value(4));
    expect(store.ttl('k', 1050)).toBe(50);
    expect(store.get('k', 1100)).toBeUndefined();
    expect(store.ttl('k', 1100)).toBe(-2);
    expect(store.stats()).toMatchObject({
      keys: 1,
      hits: 1,
      misses: 1,
      bytes: 1 + 4 + ENTRY_OVERHEAD_BYTES,
    });
  });

  it('serves MGET and GET with metadata, and skips non-cache log entries', () => {
    const store = new CacheStore({ capacityBytes: 10_000 });
    const requests: CommandRequest[] = [
      {
        op: 'mset',
        entries: [
          { key: 'a', value: value(1) },
          { key: 'b', value: value(2) },
        ],
      },
    ];
    store.skip(1);
    store.apply(2, prepare(store, requests, 500).payload);
    expect(store.mget(['a', 'x', 'b'], 600).map((v) => v?.byteLength)).toEqual([1, undefined, 2]);
    expect(store.getEntry('b', 600)).toMatchObject({ version: 2, createdAt: 500, expiresAt: 0 });
    expect(store.stats()).toMatchObject({ hits: 3, misses: 1 });
  });
});

describe('eviction', () => {
  it('LRU offers the least recently used entry first and relearns its order on leader change', () => {
    const policy = new LruPolicy();
    const store = new CacheStore({ capacityBytes: 3 * (ENTRY_OVERHEAD_BYTES + 2), policy });
    const set = (seq: number, key: string, at: number) =>
      store.apply(seq, prepare(store, [{ op: 'set', key, value: value(1) }], at).payload);
    set(1, 'a', 10);
    set(2, 'b', 20);
    set(3, 'c', 30);
    store.get('a', 40);
    const order = () => [...policy.victims(0)].map((h) => store.entries.key(h));
    expect(order()).toEqual(['b', 'c', 'a']);
    store.onBecomeLeader();
    expect(order()).toEqual(['b', 'c', 'a']);
    const prepared = prepare(store, [{ op: 'set', key: 'd', value: value(1) }], 50);
    expect(prepared.commands.map((c) => c.op)).toEqual(['evict', 'set']);
    expect(store.apply(4, prepared.payload).outcomes.map((o) => o.status)).toEqual([
      'applied',
      'applied',
    ]);
    expect(store.get('b', 60)).toBeUndefined();
    expect(store.stats()).toMatchObject({ keys: 3, evictions: 1 });
  });
});

describe('prepare with entries in flight', () => {
  it('plans room for writes proposed but not applied yet', () => {
    const store = new CacheStore({
      capacityBytes: 4 * (ENTRY_OVERHEAD_BYTES + 11),
      policy: new LruPolicy(),
    });
    const set = (key: string): CommandRequest => ({
      op: 'set',
      key,
      value: value(10),
    });
    store.apply(1, prepare(store, [set('a'), set('b'), set('c')], 1).payload);
    // Two entries prepared back to back, both before either applies.
    const first = prepare(store, [set('d')], 2);
    expect(first.evictedKeys).toEqual([]);
    const naive = prepare(store, [set('e')], 2);
    const planned = prepare(store, [set('e')], 2, {
      inflightBytes: first.bytesDelta,
      inflightVictims: new Set(first.evictedKeys),
    });
    expect(naive.evictedKeys).toEqual([]);
    expect(planned.evictedKeys).toEqual(['a']);
    store.apply(2, first.payload);
    expect(store.apply(3, planned.payload).outcomes.map((o) => o.status)).toEqual([
      'applied',
      'applied',
    ]);
    expect(store.stats()).toMatchObject({ keys: 4, evictions: 1 });
  });
});

describe('active expiry', () => {
  function storeWithTtls(expired: number, alive: number): CacheStore {
    const store = new CacheStore({ capacityBytes: 1e9 });
    const requests: CommandRequest[] = [];
    for (let i = 0; i < expired + alive; i++) {
      requests.push({
        op: 'set',
        key: `k${i}`,
        value: value(1),
        px: i < expired ? 10 : 1e6,
      });
    }
    store.apply(1, prepare(store, requests, 0).payload);
    return store;
  }

  it('keeps sampling while more than a quarter of a sample was expired', () => {
    const store = storeWithTtls(1000, 0);
    const random = mulberry32(1);
    const deletes = expiryCycle(store.entries, {
      now: 100,
      random,
      elapsed: () => 0,
      maxDeletes: 10_000,
    });
    expect(deletes.length).toBeGreaterThan(500);
    store.apply(2, encodeEntry({ at: 100, commands: deletes }));
    expect(store.stats()).toMatchObject({
      keys: 1000 - deletes.length,
      expirations: deletes.length,
    });
  });

  it('stops after one round when few sampled keys were expired, and within its budget', () => {
    const sparse = storeWithTtls(10, 990);
    const random = mulberry32(7);
    expect(
      expiryCycle(sparse.entries, { now: 100, random, elapsed: () => 0 }).length,
    ).toBeLessThanOrEqual(20);
    let clock = 0;
    const dense = storeWithTtls(1000, 0);
    const budgeted = expiryCycle(dense.entries, {
      now: 100,
      random,
      elapsed: () => clock++,
      budgetMs: 3,
      maxDeletes: 10_000,
    });
    expect(budgeted.length).toBeLessThanOrEqual(3 * 20);
  });
});
