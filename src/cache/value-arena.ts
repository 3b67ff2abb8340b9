// Where the store keeps value bytes: in large pages, not one ArrayBuffer per value. A
// separate buffer per value costs two engine objects and an allocation each (about 150
// bytes and most of a SET's time); a page slice costs 12 bytes of location per entry.
//
// Pages are append-only: bytes once written are never overwritten, so a view handed out (to
// a reader, or to a snapshot by copy-on-write) stays valid and unchanged for as long as it
// is held; it keeps its page alive. A replaced or deleted value leaves dead bytes behind.
// A page whose values are all gone is dropped at once; when dead bytes exceed
// RECLAIM_ABOVE of the shared pages, the page with the most dead bytes has its live values
// copied to the current page and is dropped (a log-structured cleaner, greedy). A page is
// sealed more than three quarters full, so the shared pages hold at most 2 x live + 1.5
// pages (about 1.33 x live once many pages are in use), and a pattern that rewrites keys in
// order empties whole pages without copying anything.
// Values larger than a quarter page get a page of their own, dropped when the value goes.
//
// Layout is replica-local: it never influences replicated state or byte accounting.

const NO_PAGE = -1;
const RECLAIM_ABOVE = 0.25;

export const DEFAULT_PAGE_BYTES = 1024 * 1024;

export class ValueArena {
  readonly #pageBytes: number;
  #pages: (Uint8Array | undefined)[] = [];
  /** The pages' buffers, to make views with the plain constructor (faster than subarray). */
  #buffers: (ArrayBuffer | undefined)[] = [];
  /** Whether a page holds one large value only. */
  #dedicated: boolean[] = [];
  /** Bytes appended to each page, live or dead. */
  #fill: number[] = [];
  /** Bytes of each page still referenced by an entry. */
  #live: number[] = [];
  /** Values of each page still referenced (empty values hold no bytes but need their page). */
  #liveValues: number[] = [];
  /** Slots whose values were appended to each page (some since moved): what a cleaning visits. */
  #residents: number[][] = [];
  #freePageIds: number[] = [];
  #current = NO_PAGE;
  #sharedPages = 0;
  /** Dead bytes over all shared pages: the sum of fill - live. */
  #dead = 0;
  #cleaning = false;
  /** Per slot: [page, offset, length]. */
  #locations = new Int32Array(0);

  constructor(pageBytes = DEFAULT_PAGE_BYTES) {
    this.#pageBytes = pageBytes;
  }

  /** Bytes held in pages (live, dead and not yet filled): the real memory behind the values. */
  get heldBytes(): number {
    let total = 0;
    for (const page of this.#pages) total += page?.byteLength ?? 0;
    return total;
  }

  /** Makes room for slots below `slots`. */
  grow(slots: number): void {
    const locations = new Int32Array(slots * 3);
    locations.set(this.#locations);
    this.#locations = locations;
  }

  /** A view of the value of `slot`. Never mutate it: it is the stored value. */
  view(slot: number): Uint8Array {
    const at = slot * 3;
    const buffer = this.#buffers[this.#locations[at]] as ArrayBuffer;
    return new Uint8Array(buffer, this.#locations[at + 1], this.#locations[at + 2]);
  }

  /** Copies `value` in as the value of `slot`, which holds none. */
  store(slot: number, value: Uint8Array): void {
    const length = value.byteLength;
    let page: number;
    let sealed = false;
    if (length > this.#pageBytes / 4) {
      page = this.#newPage(length, true);
    } else {
      if (this.#current === NO_PAGE || this.#fill[this.#current] + length > this.#pageBytes) {
        const previous = this.#current;
        this.#current = this.#newPage(this.#pageBytes, false);
        if (previous !== NO_PAGE && this.#liveValues[previous] === 0) this.#dropPage(previous);
        sealed = previous !== NO_PAGE;
      }
      page = this.#current;
    }
    const offset = this.#fill[page];
    (this.#pages[page] as Uint8Array).set(value, offset);
    this.#fill[page] += length;
    this.#live[page] += length;
    this.#liveValues[page]++;
    this.#residents[page].push(slot);
    const at = slot * 3;
    this.#locations[at] = page;
    this.#locations[at + 1] = offset;
    this.#locations[at + 2] = length;
    // The page just sealed may hold dead bytes that only now count against the threshold.
    if (sealed) this.#clean();
  }

  /** Forgets the value of `slot`. Views of it stay valid. */
  release(slot: number): void {
    const at = slot * 3;
    const page = this.#locations[at];
    const length = this.#locations[at + 2];
    this.#locations[at] = NO_PAGE;
    this.#live[page] -= length;
    this.#liveValues[page]--;
    if (this.#dedicated[page]) {
      this.#dropPage(page);
      return;
    }
    this.#dead += length;
    if (this.#liveValues[page] === 0 && page !== this.#current) this.#dropPage(page);
    this.#clean();
  }

  /** Evacuates the pages with the most dead bytes until the dead are a small enough share. */
  #clean(): void {
    if (this.#cleaning) return;
    this.#cleaning = true;
    while (this.#dead > RECLAIM_ABOVE * this.#sharedPages * this.#pageBytes) {
      const victim = this.#mostDead();
      if (victim === NO_PAGE) break;
      this.#evacuate(victim);
    }
    this.#cleaning = false;
  }

  /** The sealed shared page with the most dead bytes, or NO_PAGE if none has any. */
  #mostDead(): number {
    let best = NO_PAGE;
    let bestDead = 0;
    for (let page = 0; page < this.#pages.length; page++) {
      if (page === this.#current || this.#pages[page] === undefined || this.#dedicated[page])
        continue;
      const dead = this.#fill[page] - this.#live[page];
      if (dead > bestDead) {
        best = page;
        bestDead = dead;
      }
    }
    return best;
  }

  /** Moves the live values of `page` to the current page and drops it. */
  #evacuate(page: number): void {
    const bytes = this.#pages[page] as Uint8Array;
    const residents = this.#residents[page];
    this.#residents[page] = [];
    for (const slot of residents) {
      const at = slot * 3;
      if (this.#locations[at] !== page) continue;
      const offset = this.#locations[at + 1];
      const length = this.#locations[at + 2];
      this.#live[page] -= length;
      this.#liveValues[page]--;
      this.#dead += length;
      this.store(slot, bytes.subarray(offset, offset + length));
    }
    this.#dropPage(page);
  }

  #newPage(bytes: number, dedicated: boolean): number {
    const id =
      this.#freePageIds.length > 0 ? (this.#freePageIds.pop() as number) : this.#pages.length;
    const buffer = new ArrayBuffer(bytes);
    this.#pages[id] = new Uint8Array(buffer);
    this.#buffers[id] = buffer;
    this.#dedicated[id] = dedicated;
    this.#fill[id] = 0;
    this.#live[id] = 0;
    this.#liveValues[id] = 0;
    this.#residents[id] = [];
    if (!dedicated) this.#sharedPages++;
    return id;
  }

  /** Drops a page that no entry references any more. */
  #dropPage(page: number): void {
    if (!this.#dedicated[page]) {
      this.#sharedPages--;
      this.#dead -= this.#fill[page];
    }
    this.#pages[page] = undefined;
    this.#buffers[page] = undefined;
    this.#residents[page] = [];
    this.#freePageIds.push(page);
  }
}
