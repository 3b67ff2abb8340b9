// `ttl`: the entry that expires soonest goes first (Redis's volatile-ttl), then the entries
// without an expiry in the order of a fallback policy (LRU unless configured).
//
// Entries with an expiry sit in a binary min-heap by `expiresAt`, kept in typed arrays
// indexed by handle (heap slots, each handle's heap position, its cached expiry): an insert,
// update or removal is O(log n) and allocates nothing, and a read touches only the fallback.
// The victims walk reads the heap in order without changing it, through a small frontier
// heap of positions that grows only with the number of victims taken.
import type { EntryTableView, EvictionPolicy } from '../../src/cache/eviction-policy.ts';
import { LfuPolicy } from '../lfu/index.ts';
import { LruPolicy } from '../lru/index.ts';

export interface TtlOptions {
  /** Orders the entries without an expiry (and every entry once those run out): `lru` by default. */
  fallback?: 'lru' | 'lfu' | EvictionPolicy;
}

const ABSENT = -1;
const NO_EXPIRY = 0;

export class TtlPolicy implements EvictionPolicy {
  readonly name = 'ttl';
  readonly fallback: EvictionPolicy;
  #view: EntryTableView | null = null;
  /** Heap of handles, soonest expiry at 0. */
  #heap = new Int32Array(16);
  #count = 0;
  /** Per handle: its position in the heap, or ABSENT. */
  #position = new Int32Array(16).fill(ABSENT);
  /** Per handle: the expiry the heap is ordered by (the view's, as last notified). */
  #expiry = new Float64Array(16);

  constructor(options: TtlOptions = {}) {
    const fallback = options.fallback ?? 'lru';
    this.fallback =
      fallback === 'lru' ? new LruPolicy() : fallback === 'lfu' ? new LfuPolicy() : fallback;
  }

  attach(view: EntryTableView): void {
    this.#view = view;
    this.fallback.attach(view);
    this.#rebuildHeap();
  }

  onInsert(handle: number): void {
    if (handle >= this.#position.length) this.#reserve(handle + 1);
    this.#position[handle] = ABSENT;
    this.#track(handle);
    this.fallback.onInsert(handle);
  }

  onUpdate(handle: number): void {
    this.#track(handle);
    this.fallback.onUpdate(handle);
  }

  onAccess(handle: number): void {
    this.fallback.onAccess(handle);
  }

  onRemove(handle: number): void {
    if (this.#position[handle] !== ABSENT) this.#removeAt(this.#position[handle]);
    this.fallback.onRemove(handle);
  }

  *victims(bytesNeeded: number): Generator<number> {
    // Frontier: heap positions whose parents were yielded, itself a min-heap by expiry.
    const frontier: number[] = [];
    if (this.#count > 0) frontier.push(0);
    while (frontier.length > 0) {
      const at = this.#popFrontier(frontier);
      yield this.#heap[at];
      if (2 * at + 1 < this.#count) this.#pushFrontier(frontier, 2 * at + 1);
      if (2 * at + 2 < this.#count) this.#pushFrontier(frontier, 2 * at + 2);
    }
    for (const handle of this.fallback.victims(bytesNeeded))
      if (this.#position[handle] === ABSENT) yield handle;
  }

  rebuild(): void {
    this.fallback.rebuild();
    this.#rebuildHeap();
  }

  #rebuildHeap(): void {
    const view = this.#view;
    if (view === null) return;
    this.#reserve(view.handleLimit);
    this.#position.fill(ABSENT);
    this.#count = 0;
    for (const handle of view.handles()) this.#track(handle);
  }

  /** Puts `handle` where its current expiry says: in the heap, moved in it, or out of it. */
  #track(handle: number): void {
    const expiresAt = (this.#view as EntryTableView).expiresAt(handle);
    const at = this.#position[handle];
    if (expiresAt === NO_EXPIRY) {
      if (at !== ABSENT) this.#removeAt(at);
      return;
    }
    this.#expiry[handle] = expiresAt;
    if (at === ABSENT) {
      this.#heap[this.#count] = handle;
      this.#position[handle] = this.#count;
      this.#siftUp(this.#count++);
    } else {
      this.#siftDown(this.#siftUp(at));
    }
  }

  #removeAt(at: number): void {
    const handle = this.#heap[at];
    this.#position[handle] = ABSENT;
    const last = this.#heap[--this.#count];
    if (at === this.#count) return;
    this.#heap[at] = last;
    this.#position[last] = at;
    this.#siftDown(this.#siftUp(at));
  }

  /** Returns where the handle at `at` ended. */
  #siftUp(at: number): number {
    const heap = this.#heap;
    const handle = heap[at];
    const expiry = this.#expiry[handle];
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (this.#expiry[heap[parent]] <= expiry) break;
      heap[at] = heap[parent];
      this.#position[heap[at]] = at;
      at = parent;
    }
    heap[at] = handle;
    this.#position[handle] = at;
    return at;
  }

  #siftDown(at: number): void {
    const heap = this.#heap;
    const handle = heap[at];
    const expiry = this.#expiry[handle];
    for (;;) {
      let child = 2 * at + 1;
      if (child >= this.#count) break;
      if (child + 1 < this.#count && this.#expiry[heap[child + 1]] < this.#expiry[heap[child]])
        child++;
      if (this.#expiry[heap[child]] >= expiry) break;
      heap[at] = heap[child];
      this.#position[heap[at]] = at;
      at = child;
    }
    heap[at] = handle;
    this.#position[handle] = at;
  }

  #pushFrontier(frontier: number[], at: number): void {
    let i = frontier.length;
    frontier.push(at);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#expiryAt(frontier[parent]) <= this.#expiryAt(at)) break;
      frontier[i] = frontier[parent];
      i = parent;
    }
    frontier[i] = at;
  }

  #popFrontier(frontier: number[]): number {
    const top = frontier[0];
    const last = frontier.pop() as number;
    if (frontier.length === 0) return top;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= frontier.length) break;
      if (
        child + 1 < frontier.length &&
        this.#expiryAt(frontier[child + 1]) < this.#expiryAt(frontier[child])
      )
        child++;
      if (this.#expiryAt(frontier[child]) >= this.#expiryAt(last)) break;
      frontier[i] = frontier[child];
      i = child;
    }
    frontier[i] = last;
    return top;
  }

  #expiryAt(heapPosition: number): number {
    return this.#expiry[this.#heap[heapPosition]];
  }

  #reserve(limit: number): void {
    if (limit <= this.#position.length) return;
    const size = Math.max(limit, this.#position.length * 2);
    const heap = new Int32Array(size);
    heap.set(this.#heap);
    this.#heap = heap;
    const position = new Int32Array(size).fill(ABSENT);
    position.set(this.#position);
    this.#position = position;
    const expiry = new Float64Array(size);
    expiry.set(this.#expiry);
    this.#expiry = expiry;
  }
}

/** The module's plugin entry point; `options` as in `TtlOptions`. */
export function createPolicy(options?: TtlOptions): EvictionPolicy {
  return new TtlPolicy(options);
}
