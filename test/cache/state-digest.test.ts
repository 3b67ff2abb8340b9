import { describe, expect, it } from 'vitest';
import { encodeEntry } from '../../src/cache/codec.ts';
import { type Command, type CommandRequest, NO_WRITE_ID } from '../../src/cache/commands.ts';
import type { CapturedEntry } from '../../src/cache/entry-table.ts';
import { prepare } from '../../src/cache/prepare.ts';
import { restoreSnapshot, snapshotChunks } from '../../src/cache/snapshot.ts';
import { CacheStore } from '../../src/cache/store.ts';

type Request = Exclude<CommandRequest, { op: 'open-session' }>;

/**
 * A store fed its own log: each write is prepared at `at` and applied at the next index,
 * in the session the first entry opens.
 */
class LoggedStore {
  readonly store = new CacheStore({ capacityBytes: 10_000 });
  #seq = 0;

  constructor() {
    this.store.apply(1, prepare(this.store, [{ op: 'open-session', clientId: 'c' }], 1).payload);
  }

  write(at: number, request: Request): void {
    const seq = ++this.#seq;
    const full = { ...request, writeId: { clientId: 'c', session: 1, seq, lowestPending: seq } };
    this.store.apply(this.store.appliedIndex + 1, prepare(this.store, [full], at).payload);
  }

  /** A leader-made command (eviction, expiry delete), as the host proposes it. */
  system(
    at: number,
    command: Omit<
      Command & { op: 'evict' | 'expire-delete' },
      'clientId' | 'session' | 'seq' | 'lowestPending'
    >,
  ) {
    const payload = encodeEntry({ at, commands: [{ ...command, ...NO_WRITE_ID }] });
    return this.store.apply(this.store.appliedIndex + 1, payload).outcomes[0];
  }

  version(key: string): number {
    return this.store.entries.version(this.store.entries.slotOf(key));
  }
}

const bytes = (text: string) => Buffer.from(text);

describe('the state digest', () => {
  it('ignores reads, replica-local counters and memory layout', () => {
    const log = new LoggedStore();
    log.write(100, { op: 'set', key: 'a', value: bytes('1') });
    log.write(110, { op: 'set', key: 'b', value: bytes('2'), px: 1000 });
    log.write(120, {
      op: 'mset',
      entries: [
        { key: '{t}x', value: bytes('3') },
        { key: '{t}y', value: bytes('4') },
      ],
    });
    log.write(130, { op: 'del', keys: ['a'] });
    log.write(140, { op: 'set', key: 'a', value: bytes('5') });
    const { store } = log;
    const before = store.digest();
    expect(before).toMatch(/^[0-9a-f]{64}$/);

    store.get('a', 200);
    store.getEntry('b', 300);
    store.mget(['{t}x', '{t}y', 'absent'], 400);
    store.ttl('b', 500);
    store.get('b', 5000); // expired: hidden and counted as a miss, still held
    expect(store.stats()).toMatchObject({ keys: 4, hits: 4, misses: 2 });
    expect(store.digest()).toBe(before);

    // A snapshot restore holds the same state in other slots and value pages.
    const restored = restoreSnapshot(snapshotChunks(store));
    expect(restored.stats()).toMatchObject({ keys: 4, hits: 0, misses: 0 });
    expect(restored.digest()).toBe(before);
    // A log entry that is no cache command moves the applied index only.
    store.skip(store.appliedIndex + 1);
    expect(store.digest()).toBe(before);
  });

  it('tells apart entries that differ in any one replicated field, not in lastAccessed', () => {
    const base: CapturedEntry = {
      key: 'k',
      value: bytes('v'),
      version: 3,
      expiresAt: 5000,
      createdAt: 1000,
    };
    const digestOf = (entry: CapturedEntry) => {
      const store = new CacheStore({ capacityBytes: 10_000 });
      expect(store.restoreEntry(entry)).toBe(true);
      return store;
    };
    const variants = [
      base,
      { ...base, key: 'K' },
      { ...base, value: bytes('w') },
      { ...base, value: bytes('vv') },
      { ...base, version: 4 },
      { ...base, expiresAt: 0 },
      { ...base, createdAt: 1001 },
    ];
    const digests = variants.map((entry) => digestOf(entry).digest());
    expect(new Set(digests).size).toBe(variants.length);
    const touched = digestOf(base);
    touched.get('k', 4000);
    expect(touched.digest()).toBe(digests[0]);
  });

  it('changes with every command that changes replicated state, and not with one that fails', () => {
    const log = new LoggedStore();
    const digests = [log.store.digest()];
    const changed = () => digests.push(log.store.digest());
    log.write(100, { op: 'set', key: 'a', value: bytes('1') });
    changed();
    log.write(110, { op: 'set', key: 'a', value: bytes('1') }); // same value, new version
    changed();
    log.write(120, { op: 'set', key: 'a', value: bytes('1'), keepTtl: true, condition: 'nx' });
    changed(); // not applied, but the client's session recorded the outcome
    log.write(130, { op: 'expire', key: 'a', ttlMs: 1000 });
    changed();
    log.write(140, { op: 'expire', key: 'a', ttlMs: null });
    changed();
    log.write(150, { op: 'mset', entries: [{ key: 'b', value: bytes('2') }], px: 50 });
    changed();
    expect(
      log.system(160, { op: 'expire-delete', key: 'b', version: log.version('b') }),
    ).toMatchObject({ status: 'applied' });
    changed();
    log.write(170, { op: 'set', key: 'c', value: bytes('3') });
    changed();
    // A stale eviction at the same leader time (the sessions' clock stays) changes nothing.
    const stale = log.store.digest();
    expect(log.system(170, { op: 'evict', key: 'c', version: 1 })).toMatchObject({
      status: 'not-applied',
    });
    expect(log.store.digest()).toBe(stale);
    expect(log.system(190, { op: 'evict', key: 'c', version: log.version('c') })).toMatchObject({
      status: 'applied',
    });
    changed();
    log.write(200, { op: 'del', keys: ['a'] });
    changed();
    expect(log.store.stats()).toMatchObject({ keys: 0, evictions: 1, expirations: 1 });
    expect(new Set(digests).size).toBe(digests.length);
  });
});
