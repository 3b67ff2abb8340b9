// `lfu`: least frequently used first, with aging (LFU with dynamic aging, LFU-DA).
//
// Each entry has a priority: it enters at `floor + 1` and gains 1 per read or write, up to
// `floor + span - 1`. `floor` is the lowest live priority, so it rises as the least used
// entries leave: a new entry starts level with what is being evicted now, and an entry
// nobody touches stays where it is while the floor catches up with it. Yesterday's hot key
// therefore fades after enough turnover instead of staying forever, with no sweep over the
// keys: aging is the floor moving.
//
// Layout: live priorities lie in [floor, floor + span), so one LRU list per priority in a
// ring of `span` lists (shared/handle-lists.ts) orders the entries, ties least recently used
// first. A hit moves a handle one list up: O(1), nothing allocated. When the floor's list
// empties, the floor moves to the next non-empty list: at most `span` steps, and only after
// a removal.
import type { EntryTableView, EvictionPolicy } from '../../src/cache/eviction-policy.ts';
import { HandleLists, NONE } from '../shared/handle-lists.ts';
import { ranksOf, recencyOrder } from '../shared/recency-order.ts';

export interface LfuOptions {
  /**
   * How many priority levels an entry can climb above the floor. A larger span remembers
   * frequency longer (old hot keys take longer to fade); 1 would be plain LRU.
   */
  span?: number;
}

const DEFAULT_SPAN = 64;

export class LfuPolicy implements EvictionPolicy {
  readonly name = 'lfu';
  readonly span: number;
  #view: EntryTableView | null = null;
  #lists: HandleLists;
  /** Per handle: its absolute priority. Doubles hold integers exactly to 2^53. */
  #priority = new Float64Array(16);
  #floor = 0;
  #size = 0;

  constructor(options: LfuOptions = {}) {
    const span = options.span ?? DEFAULT_SPAN;
    if (!Number.isInteger(span) || span < 2)
      throw new RangeError('lfu span must be an integer >= 2');
    this.span = span;
    this.#lists = new HandleLists(span);
  }

  /** The lowest live priority (for tests and diagnostics). */
  get floor(): number {
    return this.#floor;
  }

  /** The entry's priority relative to the floor: 1 for a new entry. */
  frequency(handle: number): number {
    return this.#priority[handle] - this.#floor;
  }

  attach(view: EntryTableView): void {
    this.#view = view;
    this.rebuild();
  }

  onInsert(handle: number): void {
    if (handle >= this.#priority.length) this.#reserve(handle + 1);
    if (this.#size === 0) this.#floor = 0;
    this.#size++;
    this.#place(handle, this.#floor + 1);
  }

  onUpdate(handle: number): void {
    this.onAccess(handle);
  }

  onAccess(handle: number): void {
    const from = this.#priority[handle];
    const to = Math.min(from + 1, this.#floor + this.span - 1);
    this.#priority[handle] = to;
    this.#lists.move(from % this.span, to % this.span, handle);
    if (from === this.#floor) this.#raiseFloor();
  }

  onRemove(handle: number): void {
    this.#lists.unlink(this.#priority[handle] % this.span, handle);
    this.#size--;
    this.#raiseFloor();
  }

  *victims(_bytesNeeded: number): Generator<number> {
    const lists = this.#lists;
    for (let level = this.#floor; level < this.#floor + this.span; level++) {
      for (
        let handle = lists.heads[level % this.span];
        handle !== NONE;
        handle = lists.next(handle)
      )
        yield handle;
    }
  }

  /**
   * Keeps the frequencies this replica counted (from the writes it applied and the reads it
   * served) for the entries it tracked; an entry it never saw (restored from a snapshot)
   * starts as new. Within a priority, recency comes from the view's `lastAccessed`.
   */
  rebuild(): void {
    const view = this.#view;
    if (view === null) return;
    const known = ranksOf(view.handleLimit, this.victims(0));
    const order = recencyOrder(view, known);
    const relative = new Float64Array(view.handleLimit);
    for (const handle of order)
      relative[handle] = known(handle) >= 0 ? this.#priority[handle] - this.#floor : 1;
    this.#lists.clear();
    this.#reserve(view.handleLimit);
    this.#floor = 0;
    this.#size = order.length;
    for (const handle of order) this.#place(handle, relative[handle]);
    this.#raiseFloor();
  }

  #place(handle: number, priority: number): void {
    this.#priority[handle] = priority;
    this.#lists.push(priority % this.span, handle);
  }

  /** Moves the floor up to the lowest non-empty list (at most `span` steps). */
  #raiseFloor(): void {
    if (this.#size === 0) return;
    const heads = this.#lists.heads;
    for (let step = 0; step < this.span && heads[this.#floor % this.span] === NONE; step++)
      this.#floor++;
  }

  #reserve(limit: number): void {
    this.#lists.reserve(limit);
    if (limit <= this.#priority.length) return;
    const priority = new Float64Array(Math.max(limit, this.#priority.length * 2));
    priority.set(this.#priority);
    this.#priority = priority;
  }
}

/** The module's plugin entry point; `options` as in `LfuOptions`. */
export function createPolicy(options?: LfuOptions): EvictionPolicy {
  return new LfuPolicy(options);
}
