// `lru`: least recently used first. One linked list in typed arrays (shared/handle-lists.ts):
// a hit moves its handle to the tail with a few array writes and allocates nothing; the
// victims walk starts at the head.
import type { EntryTableView, EvictionPolicy } from '../../src/cache/eviction-policy.ts';
import { HandleLists, NONE } from '../shared/handle-lists.ts';
import { ranksOf, recencyOrder } from '../shared/recency-order.ts';

const LIST = 0;

export class LruPolicy implements EvictionPolicy {
  readonly name = 'lru';
  #view: EntryTableView | null = null;
  #list = new HandleLists(1);

  attach(view: EntryTableView): void {
    this.#view = view;
    this.rebuild();
  }

  onInsert(handle: number): void {
    this.#list.push(LIST, handle);
  }

  onUpdate(handle: number): void {
    this.#list.move(LIST, LIST, handle);
  }

  onAccess(handle: number): void {
    this.#list.move(LIST, LIST, handle);
  }

  onRemove(handle: number): void {
    this.#list.unlink(LIST, handle);
  }

  *victims(_bytesNeeded: number): Generator<number> {
    const list = this.#list;
    for (let handle = list.heads[LIST]; handle !== NONE; handle = list.next(handle)) yield handle;
  }

  /** Recency from the view's `lastAccessed`, ties kept in the order this replica saw. */
  rebuild(): void {
    const view = this.#view;
    if (view === null) return;
    const order = recencyOrder(view, ranksOf(view.handleLimit, this.victims(0)));
    this.#list.clear();
    this.#list.reserve(view.handleLimit);
    for (const handle of order) this.#list.push(LIST, handle);
  }
}

/** The module's plugin entry point (see plugins/README.md). */
export function createPolicy(): EvictionPolicy {
  return new LruPolicy();
}
