// A policy written the way a plugin under plugins/ would write it: against the interface
// module alone. It is the example in eviction-policy.ts's header.
import { describe, expect, it } from 'vitest';
import type { EntryTableView, EvictionPolicy } from '../../src/cache/eviction-policy.ts';
import { prepare } from '../../src/cache/prepare.ts';
import { CacheStore } from '../../src/cache/store.ts';

class FifoPolicy implements EvictionPolicy {
  readonly name = 'fifo';
  #view!: EntryTableView;
  attach(view: EntryTableView) {
    this.#view = view;
  }
  onInsert() {}
  onUpdate() {}
  onAccess() {}
  onRemove() {}
  *victims() {
    const handles = [...this.#view.handles()];
    handles.sort((a, b) => this.#view.createdAt(a) - this.#view.createdAt(b));
    yield* handles;
  }
  rebuild() {}
}

describe('eviction policy interface', () => {
  it('lets a plugin choose the victims the leader proposes', () => {
    const policy = new FifoPolicy();
    const store = new CacheStore({ capacityBytes: 3 * 200, policy });
    const value = Buffer.alloc(4);
    let index = 0;
    const set = (key: string, at: number) =>
      store.apply(++index, prepare(store, [{ op: 'set', key, value }], at).payload);
    set('old', 1);
    set('mid', 2);
    set('new', 3);
    store.get('old', 4);
    set('next', 5);
    expect(store.stats()).toMatchObject({ keys: 3, evictions: 1, policy: 'fifo' });
    expect(store.get('old', 6)).toBeUndefined();
    expect(store.get('mid', 6)).toBeDefined();
  });
});
