// A policy written the way a plugin under plugins/ would write it: against the interface
// module alone (the example in eviction-policy.ts's header); then the guard the store calls
// every policy through (policy-guard.ts), on its own.
import { describe, expect, it } from 'vitest';
import { ModelTable } from '../../plugins/kit/model-table.ts';
import { LruPolicy } from '../../plugins/lru/index.ts';
import type { EntryTableView, EvictionPolicy } from '../../src/cache/eviction-policy.ts';
import { GuardedPolicy, type PolicyFallbackEvent } from '../../src/cache/policy-guard.ts';
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

/** A policy built from parts, for the guard's unit tests: FIFO by handle order unless told. */
function policyOf(parts: Partial<EvictionPolicy>): EvictionPolicy {
  let view: EntryTableView | null = null;
  return {
    name: 'parts',
    attach: (attached) => {
      view = attached;
    },
    onInsert() {},
    onUpdate() {},
    onAccess() {},
    onRemove() {},
    victims: () => (view as EntryTableView).handles(),
    rebuild() {},
    ...parts,
  };
}

function tableOf(entries: number): ModelTable {
  const table = new ModelTable();
  for (let i = 0; i < entries; i++) table.insert(`k${i}`, 100);
  return table;
}

describe('guarded policy', () => {
  it('ends a walk at its budget by the clock it is given; three slow walks in a row drop the plugin', () => {
    let now = 0;
    let slow = true;
    const plugin = policyOf({
      *victims() {
        now += slow ? 15 : 1;
        yield 0;
        yield 1;
      },
    });
    const guard = new GuardedPolicy({
      create: () => plugin,
      fallback: () => new LruPolicy(),
      clock: () => now,
      victimsBudgetMs: 10,
    });
    const table = tableOf(3);
    table.attach(guard);
    const walk = () => [...guard.victims(1)];
    expect(walk()).toEqual([]);
    expect(walk()).toEqual([]);
    slow = false;
    // A quick walk in between: the count of slow walks in a row starts again.
    expect(walk()).toEqual([0, 1]);
    slow = true;
    walk();
    walk();
    expect(guard.name).toBe('parts');
    // The third in a row: the plugin is dropped, and LRU finishes this very walk.
    expect(walk()).toEqual([0, 1, 2]);
    expect(guard.health()).toMatchObject({
      active: 'lru',
      slowWalks: 5,
      failures: { victims: 1 },
      fallbackReason: 'victims: Error: 3 victims walks in a row took over 10 ms',
    });
  });

  it('lets the fallback go on from where a failing walk stopped, naming no handle twice', () => {
    const plugin = policyOf({
      *victims() {
        yield 2;
        throw new Error('lost');
      },
    });
    const guard = new GuardedPolicy({ create: () => plugin, fallback: () => new LruPolicy() });
    tableOf(3).attach(guard);
    expect([...guard.victims(1)]).toEqual([2, 0, 1]);
    expect(guard.health().fallbackReason).toBe('victims: Error: lost');
  });

  it('closes the plugin generator when the store stops pulling', () => {
    let closed = false;
    const plugin = policyOf({
      *victims() {
        try {
          yield 0;
          yield 1;
        } finally {
          closed = true;
        }
      },
    });
    const guard = new GuardedPolicy({ create: () => plugin });
    tableOf(2).attach(guard);
    for (const handle of guard.victims(1)) if (handle === 0) break;
    expect(closed).toBe(true);
    expect(guard.health().failures.victims).toBe(0);
  });

  it('closes a plugin generator whose victim was refused; its failure to close drops no fallback', () => {
    let closed = false;
    const plugin = policyOf({
      *victims() {
        try {
          yield -1;
        } finally {
          closed = true;
          // biome-ignore lint/correctness/noUnsafeFinally: a plugin's mistake, on purpose
          throw new Error('cannot even close');
        }
      },
    });
    const guard = new GuardedPolicy({ create: () => plugin, fallback: () => new LruPolicy() });
    tableOf(2).attach(guard);
    expect([...guard.victims(1)]).toEqual([0, 1]);
    expect(closed).toBe(true);
    expect(guard.health()).toMatchObject({
      active: 'lru',
      failures: { victims: 1 },
      fallbackReason: "victims: Error: victims named -1, not a live entry's handle",
    });
  });

  it('evicts nothing once the fallback fails too, and says so', () => {
    const events: PolicyFallbackEvent[] = [];
    const throwing = (what: string) =>
      policyOf({
        name: what,
        onInsert() {
          throw new RangeError(`${what} broke`);
        },
      });
    const guard = new GuardedPolicy({
      create: () => throwing('plugin'),
      fallback: () => throwing('fallback'),
      onFallback: (event) => events.push(event),
    });
    const table = tableOf(0);
    table.attach(guard);
    table.insert('a', 100);
    table.insert('b', 100);
    table.insert('c', 100);
    expect([...guard.victims(1)]).toEqual([]);
    expect(guard.health()).toMatchObject({
      active: 'none',
      failures: { onInsert: 2 },
      fallbackReason:
        'onInsert: RangeError: plugin broke; then the fallback failed, onInsert: RangeError: fallback broke',
    });
    expect(events.map((e) => [e.dropped, e.active])).toEqual([
      ['plugin', 'fallback'],
      ['fallback', 'none'],
    ]);
  });

  it('never leaves a rejected promise from a hook unhandled', async () => {
    const unhandled: unknown[] = [];
    const listen = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', listen);
    try {
      const plugin = policyOf({
        onInsert: (() => Promise.reject(new Error('async hook'))) as () => void,
      });
      const guard = new GuardedPolicy({ create: () => plugin, fallback: () => new LruPolicy() });
      const table = tableOf(0);
      table.attach(guard);
      table.insert('a', 100);
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(unhandled).toEqual([]);
      expect(guard.health()).toMatchObject({
        active: 'lru',
        fallbackReason: 'onInsert: Error: returned a promise; hooks are synchronous',
      });
    } finally {
      process.off('unhandledRejection', listen);
    }
  });

  it('a store given no policy evicts nothing: a write that needs room is refused as full', () => {
    const store = new CacheStore({ capacityBytes: 2 * 200 });
    const set = (seq: number, key: string) =>
      store.apply(seq, prepare(store, [{ op: 'set', key, value: Buffer.alloc(4) }], seq).payload)
        .outcomes;
    set(1, 'a');
    set(2, 'b');
    expect(set(3, 'c')).toEqual([{ status: 'refused', code: 'OVER_CAPACITY' }]);
    expect(store.stats()).toMatchObject({ keys: 2, evictions: 0, policy: 'none' });
  });
});
