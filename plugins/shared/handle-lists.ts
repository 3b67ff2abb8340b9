// Doubly linked lists of handles threaded through typed arrays, the layout node-lru-cache
// uses: a handle's links are two Int32Array slots, so moving an entry is a few array writes
// and nothing is allocated per operation. One instance holds any number of lists (LRU uses
// one, LFU one per priority); a handle is in at most one of them at a time, and the caller
// says which (the lists do not store membership: that would be a third array the LRU does
// not need).

export const NONE = -1;

export class HandleLists {
  /** Per list: its first handle (the least recently pushed), or NONE. */
  readonly heads: Int32Array;
  /** Per list: its last handle (the most recently pushed), or NONE. */
  readonly tails: Int32Array;
  /** Per handle [prev, next], interleaved so that one entry's links share a cache line. */
  #links: Int32Array;

  constructor(lists: number, handles = 16) {
    this.heads = new Int32Array(lists).fill(NONE);
    this.tails = new Int32Array(lists).fill(NONE);
    this.#links = new Int32Array(Math.max(handles, 16) * 2);
  }

  /** The handle after `handle` in its list (towards the tail), or NONE. */
  next(handle: number): number {
    return this.#links[handle * 2 + 1];
  }

  /** Makes room for handles below `limit`, doubling so growth is amortized O(1). */
  reserve(limit: number): void {
    if (limit * 2 <= this.#links.length) return;
    const links = new Int32Array(Math.max(limit, this.#links.length) * 2);
    links.set(this.#links);
    this.#links = links;
  }

  /** Appends `handle` (not in any list) at the tail of `list`. */
  push(list: number, handle: number): void {
    if (handle * 2 >= this.#links.length) this.reserve(handle + 1);
    const links = this.#links;
    const tail = this.tails[list];
    links[handle * 2] = tail;
    links[handle * 2 + 1] = NONE;
    if (tail === NONE) this.heads[list] = handle;
    else links[tail * 2 + 1] = handle;
    this.tails[list] = handle;
  }

  /** Takes `handle` out of `list`, which holds it. */
  unlink(list: number, handle: number): void {
    const links = this.#links;
    const prev = links[handle * 2];
    const next = links[handle * 2 + 1];
    if (prev === NONE) this.heads[list] = next;
    else links[prev * 2 + 1] = next;
    if (next === NONE) this.tails[list] = prev;
    else links[next * 2] = prev;
  }

  /** Moves `handle` from wherever it is in `from` to the tail of `to`. */
  move(from: number, to: number, handle: number): void {
    if (from === to && this.tails[to] === handle) return;
    this.unlink(from, handle);
    this.push(to, handle);
  }

  /** Empties every list (the links are overwritten as handles are pushed again). */
  clear(): void {
    this.heads.fill(NONE);
    this.tails.fill(NONE);
  }
}
