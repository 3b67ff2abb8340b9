import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { encodeEntry } from '../../src/cache/codec.ts';
import { type Command, NO_WRITE_ID } from '../../src/cache/commands.ts';
import {
  beginSnapshot,
  readSnapshot,
  restoreSnapshot,
  SnapshotRestorer,
  snapshotChunks,
} from '../../src/cache/snapshot.ts';
import { CacheStore } from '../../src/cache/store.ts';

function setCommands(keys: string[], value: Uint8Array): Command[] {
  return keys.map((key, i) => ({
    op: 'set',
    ...NO_WRITE_ID,
    key,
    value,
    expiresAt: i % 3 === 0 ? 9e12 : 0,
    keepTtl: false,
    condition: 'none',
    ifVersion: 0,
  }));
}

function smallStore(): CacheStore {
  const store = new CacheStore({ capacityBytes: 1e7 });
  const keys = Array.from({ length: 300 }, (_, i) => `key-${i}`);
  store.apply(1, encodeEntry({ at: 5, commands: setCommands(keys, Buffer.alloc(100, 3)) }));
  return store;
}

describe('snapshot stream', () => {
  it('restores to an equal store that keeps applying', () => {
    const store = smallStore();
    const chunks = snapshotChunks(store, 4096);
    expect(chunks.length).toBeGreaterThan(5);
    const restored = restoreSnapshot(chunks);
    expect(readSnapshot(snapshotChunks(restored))).toEqual(readSnapshot(chunks));
    expect(restored.appliedIndex).toBe(1);
    const next = encodeEntry({ at: 6, commands: setCommands(['key-1'], Buffer.from('x')) });
    expect(restored.apply(2, next).outcomes).toEqual(store.apply(2, next).outcomes);
  });

  it('detects a damaged, missing, repeated or reordered chunk and a truncated stream', () => {
    const chunks = snapshotChunks(smallStore(), 4096);
    const damaged = chunks.map((chunk) => Buffer.from(chunk));
    damaged[2][damaged[2].length - 3] ^= 0x40;
    expect(() => restoreSnapshot(damaged)).toThrow(
      expect.objectContaining({ code: 'SNAPSHOT_CORRUPT' }),
    );
    expect(() => restoreSnapshot(chunks.filter((_, i) => i !== 2))).toThrow(
      /missing or out of order/,
    );
    expect(() => restoreSnapshot([...chunks.slice(0, 3), chunks[2], ...chunks.slice(3)])).toThrow(
      /out of order/,
    );
    expect(() => restoreSnapshot(chunks.slice(0, -1))).toThrow(/ended early/);
    const newer = Buffer.from(chunks[0]);
    newer[0] = 99;
    expect(() => restoreSnapshot([newer, ...chunks.slice(1)])).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED_FORMAT' }),
    );
  });

  it('refuses a second snapshot while one is running and allows one after close', () => {
    const store = smallStore();
    const stream = beginSnapshot(store);
    expect(() => beginSnapshot(store)).toThrow(
      expect.objectContaining({ code: 'SNAPSHOT_IN_PROGRESS' }),
    );
    stream.close();
    expect(() => beginSnapshot(store).close()).not.toThrow();
  });
});

describe('snapshot of a 200 MB store', () => {
  it('takes little memory beyond the store, even while writes apply', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const retained = () => {
      // Array buffers are swept in the background: one GC does not settle the count.
      for (let i = 0; i < 4; i++) gc();
      const usage = process.memoryUsage();
      return usage.heapUsed + usage.arrayBuffers;
    };

    const ENTRIES = 200_000;
    const store = new CacheStore({ capacityBytes: 300 * 1024 * 1024 });
    const keys = Array.from({ length: ENTRIES }, (_, i) => `key:${i}`);
    const value = Buffer.alloc(1024, 9);
    let index = 0;
    for (let start = 0; start < ENTRIES; start += 1000) {
      store.apply(
        ++index,
        encodeEntry({
          at: 1,
          commands: setCommands(keys.slice(start, start + 1000), value),
        }),
      );
    }
    const storeBytes = store.stats().bytes;
    expect(storeBytes).toBeGreaterThan(200 * 1024 * 1024);
    const before = retained();
    const stream = beginSnapshot(store);
    let chunks = 0;
    let streamed = 0;
    let peakExtra = 0;
    for (let chunk = stream.next(); chunk !== null; chunk = stream.next()) {
      streamed += chunk.byteLength;
      // Overwrite 2,000 keys the walk has not reached yet, halfway through.
      if (++chunks === 100) {
        const overwrites = setCommands(keys.slice(150_000, 152_000), Buffer.alloc(1024, 1));
        store.apply(++index, encodeEntry({ at: 2, commands: overwrites }));
      }
      if (chunks % 25 === 0) peakExtra = Math.max(peakExtra, retained() - before);
    }
    console.log(
      `snapshot of ${(storeBytes / 2 ** 20).toFixed(0)} MB accounted (${ENTRIES} entries) in ${chunks} chunks: ` +
        `peak extra retained ${(peakExtra / 2 ** 20).toFixed(1)} MB, with 2,000 entries overwritten mid-stream`,
    );
    expect(streamed).toBeGreaterThan(200e6);
    // A full copy would be over 200 MB; copy-on-write holds one chunk plus the overwritten values.
    expect(peakExtra).toBeLessThan(24 * 1024 * 1024);

    // The stream taken now restores to the same state.
    const restorer = new SnapshotRestorer();
    const again = beginSnapshot(store);
    for (let chunk = again.next(); chunk !== null; chunk = again.next()) restorer.push(chunk);
    expect(restorer.finish().stats()).toMatchObject({ keys: ENTRIES, bytes: store.stats().bytes });
  });
});
