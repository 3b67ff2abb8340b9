// A sample third-party eviction plugin, loaded by path: first in, first out. It imports the
// plugin interface and nothing else, and keeps its order in typed arrays indexed by handle
// (a doubly linked list), so no event allocates. Overwrites and reads do not move an entry.
import type { EntryTableView, EvictionPolicy } from '../../../src/cache/eviction-policy.ts';

const NONE = -1;

export class FifoPolicy implements EvictionPolicy {
  readonly name = 'fifo';
  #view: EntryTableView | null = null;
  #prev = new Int32Array(16);
  #next = new Int32Array(16);
  #oldest = NONE;
  #newest = NONE;

  attach(view: EntryTableView): void {
    this.#view = view;
    this.rebuild();
  }

  onInsert(handle: number): void {
    if (handle >= this.#next.length) this.#grow(handle + 1);
    this.#prev[handle] = this.#newest;
    this.#next[handle] = NONE;
    if (this.#newest === NONE) this.#oldest = handle;
    else this.#next[this.#newest] = handle;
    this.#newest = handle;
  }

  onUpdate(): void {}

  onAccess(): void {}

  onRemove(handle: number): void {
    const prev = this.#prev[handle];
    const next = this.#next[handle];
    if (prev === NONE) this.#oldest = next;
    else this.#next[prev] = next;
    if (next === NONE) this.#newest = prev;
    else this.#prev[next] = prev;
  }

  *victims(): Generator<number> {
    for (let handle = this.#oldest; handle !== NONE; handle = this.#next[handle]) yield handle;
  }

  /** Insertion order is `createdAt` (ties: write order), which every replica agrees on. */
  rebuild(): void {
    const view = this.#view;
    if (view === null) return;
    const handles = [...view.handles()];
    handles.sort(
      (a, b) => view.createdAt(a) - view.createdAt(b) || view.version(a) - view.version(b),
    );
    this.#oldest = this.#newest = NONE;
    this.#grow(view.handleLimit);
    for (const handle of handles) this.onInsert(handle);
  }

  #grow(limit: number): void {
    if (limit <= this.#next.length) return;
    const size = Math.max(limit, this.#next.length * 2);
    const prev = new Int32Array(size);
    prev.set(this.#prev);
    this.#prev = prev;
    const next = new Int32Array(size);
    next.set(this.#next);
    this.#next = next;
  }
}

export function createPolicy(): EvictionPolicy {
  return new FifoPolicy();
}
