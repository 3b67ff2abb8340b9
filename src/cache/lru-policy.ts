// Least recently used: a doubly linked list threaded through typed arrays indexed by handle,
// so a hit is a few array writes and no allocation. The fast plugins live in `plugins/`;
// this one makes the store complete on its own.
import type { EntryTableView, EvictionPolicy } from './eviction-policy.ts';

const NONE = -1;

export class LruPolicy implements EvictionPolicy {
  readonly name = 'lru';
  #view: EntryTableView | null = null;
  #prev = new Int32Array(0);
  #next = new Int32Array(0);
  /** Most recently used. */
  #head = NONE;
  /** Least recently used: the first victim. */
  #tail = NONE;

  attach(view: EntryTableView): void {
    this.#view = view;
    this.rebuild();
  }

  onInsert(handle: number): void {
    this.#ensureRoom(handle);
    this.#pushFront(handle);
  }

  onUpdate(handle: number): void {
    this.onAccess(handle);
  }

  onAccess(handle: number): void {
    if (handle === this.#head) return;
    this.#unlink(handle);
    this.#pushFront(handle);
  }

  onRemove(handle: number): void {
    this.#unlink(handle);
  }

  *victims(_bytesNeeded: number): Iterable<number> {
    for (let handle = this.#tail; handle !== NONE; handle = this.#prev[handle]) yield handle;
  }

  /** Orders the live entries by their replica-local `lastAccessed`, oldest last. */
  rebuild(): void {
    const view = this.#view;
    this.#head = this.#tail = NONE;
    if (view === null) return;
    this.#prev = new Int32Array(view.handleLimit);
    this.#next = new Int32Array(view.handleLimit);
    const handles = [...view.handles()];
    handles.sort(
      (a, b) => view.lastAccessed(a) - view.lastAccessed(b) || view.version(a) - view.version(b),
    );
    for (const handle of handles) this.#pushFront(handle);
  }

  #pushFront(handle: number): void {
    this.#prev[handle] = NONE;
    this.#next[handle] = this.#head;
    if (this.#head !== NONE) this.#prev[this.#head] = handle;
    this.#head = handle;
    if (this.#tail === NONE) this.#tail = handle;
  }

  #unlink(handle: number): void {
    const prev = this.#prev[handle];
    const next = this.#next[handle];
    if (prev !== NONE) this.#next[prev] = next;
    else this.#head = next;
    if (next !== NONE) this.#prev[next] = prev;
    else this.#tail = prev;
  }

  #ensureRoom(handle: number): void {
    if (handle < this.#prev.length) return;
    const length = Math.max(handle + 1, this.#prev.length * 2, 16);
    const prev = new Int32Array(length);
    const next = new Int32Array(length);
    prev.set(this.#prev);
    next.set(this.#next);
    this.#prev = prev;
    this.#next = next;
  }
}
