// Least recently used: a doubly linked list threaded through typed arrays indexed by handle,
// so a hit is a few array writes and no allocation. The fast plugins live in `plugins/`;
// this one makes the store complete on its own.
import type { EntryTableView, EvictionPolicy } from './eviction-policy.ts';

const NONE = -1;
const PREV = 0;
const NEXT = 1;

export class LruPolicy implements EvictionPolicy {
  readonly name = 'lru';
  #view: EntryTableView | null = null;
  /** Per handle [prev, next], interleaved so that one entry's links share a cache line. */
  #links = new Int32Array(0);
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
    for (let handle = this.#tail; handle !== NONE; handle = this.#links[handle * 2 + PREV])
      yield handle;
  }

  /** Orders the live entries by their replica-local `lastAccessed`, oldest last. */
  rebuild(): void {
    const view = this.#view;
    this.#head = this.#tail = NONE;
    if (view === null) return;
    this.#links = new Int32Array(view.handleLimit * 2);
    const handles = [...view.handles()];
    handles.sort(
      (a, b) => view.lastAccessed(a) - view.lastAccessed(b) || view.version(a) - view.version(b),
    );
    for (const handle of handles) this.#pushFront(handle);
  }

  #pushFront(handle: number): void {
    const links = this.#links;
    links[handle * 2 + PREV] = NONE;
    links[handle * 2 + NEXT] = this.#head;
    if (this.#head !== NONE) links[this.#head * 2 + PREV] = handle;
    this.#head = handle;
    if (this.#tail === NONE) this.#tail = handle;
  }

  #unlink(handle: number): void {
    const links = this.#links;
    const prev = links[handle * 2 + PREV];
    const next = links[handle * 2 + NEXT];
    if (prev !== NONE) links[prev * 2 + NEXT] = next;
    else this.#head = next;
    if (next !== NONE) links[next * 2 + PREV] = prev;
    else this.#tail = prev;
  }

  #ensureRoom(handle: number): void {
    if (handle * 2 < this.#links.length) return;
    const links = new Int32Array(Math.max(handle + 1, this.#links.length, 16) * 2);
    links.set(this.#links);
    this.#links = links;
  }
}
