import { expect, it } from 'vitest';
import { LruPolicy } from '../../plugins/lru/index.ts';
import { CacheStore } from '../../src/cache/store.ts';
import { InvariantError } from '../../src/raft/invariant.ts';
import { MemoryLogStorage } from '../../src/raft/log-storage.ts';

it('a broken invariant throws the one InvariantError, from the core and the state machine alike', () => {
  const store = new CacheStore({ capacityBytes: 1_000, policy: new LruPolicy() });
  store.skip(1);
  const fromStore = (() => {
    try {
      store.skip(1);
    } catch (error) {
      return error;
    }
  })();
  const fromLog = (() => {
    try {
      new MemoryLogStorage().compact(5);
    } catch (error) {
      return error;
    }
  })();
  for (const error of [fromStore, fromLog]) {
    expect(error).toBeInstanceOf(InvariantError);
    expect(error).toHaveProperty('name', 'InvariantError');
  }
  expect(fromStore).toHaveProperty('message', 'skip of index 1 after 1');
  expect(fromLog).toHaveProperty('message', 'compacting to 5 past the snapshot at 0');
});
