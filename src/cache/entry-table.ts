// The entries of one shard, laid out for a small per-entry cost and cheap reads (a GET
// allocates only the view of its value): a Map from key to slot, per-slot metadata in typed
// arrays (the layout of node-lru-cache), value bytes in pages (value-arena.ts). A slot is
// the handle eviction policies see. The table only stores; the rules (conditions,
// capacity, versions) are the store's.
//
// It also keeps a point-in-time capture consistent while writes continue (copy-on-write):
// a capture at index I walks the slots in order; before a write changes or removes an entry
// the walk has not reached yet and that was live at I (version <= I), the table hands the
// old entry to the capture, its value copied out (a view would pin a whole value page). A
// snapshot therefore costs memory only for the entries overwritten while it runs, never a
// second copy of the store. Entries written after I carry a version above I and the walk
// skips them.

import { invariant } from '../raft/invariant.ts';
import { NO_EXPIRY } from './commands.ts';
import { SnapshotInProgressError } from './errors.ts';
import type { EntryTableView } from './eviction-policy.ts';
import { DEFAULT_PAGE_BYTES, ValueArena } from './value-arena.ts';

const NOT_INDEXED = -1;
const META = 4;
const EXPIRES_AT = 0;
const LAST_ACCESSED = 1;
const VERSION = 2;
const CREATED_AT = 3;

/** One entry as a snapshot holds it (replicated fields only). */
export interface CapturedEntry {
  key: string;
  value: Uint8Array;
  expiresAt: number;
  createdAt: number;
  version: number;
}

export class EntryTable implements EntryTableView {
  #index = new Map<string, number>();
  #keys: (string | undefined)[] = [];
  #values: ValueArena;
  /**
   * Per slot, interleaved so that one read touches one cache line: [expiresAt, lastAccessed,
   * version, createdAt]. A GET reads the first two.
   */
  #meta = new Float64Array(0);
  #bytes = new Uint32Array(0);
  /** Dense list of the slots that have an expiry, for the leader's sampling; `#ttlPos` inverts it. */
  #ttlSlots = new Int32Array(0);
  #ttlPos = new Int32Array(0);
  #ttlCount = 0;
  #free: number[] = [];
  #highWater = 0;
  #totalBytes = 0;
  #capture: EntryCapture | null = null;

  constructor(pageBytes = DEFAULT_PAGE_BYTES) {
    this.#values = new ValueArena(pageBytes);
  }

  /** Bytes the value pages hold: what the values really cost, dead bytes included. */
  get valuePageBytes(): number {
    return this.#values.heldBytes;
  }

  get size(): number {
    return this.#index.size;
  }

  get handleLimit(): number {
    return this.#highWater;
  }

  /** Bytes charged for all entries. */
  get totalBytes(): number {
    return this.#totalBytes;
  }

  /** Entries that have an expiry time. */
  get ttlCount(): number {
    return this.#ttlCount;
  }

  /** The slot of the `i`-th entry with an expiry (0 <= i < ttlCount), in no useful order. */
  ttlSlotAt(i: number): number {
    return this.#ttlSlots[i];
  }

  /** The slot of `key`, or -1. */
  slotOf(key: string): number {
    return this.#index.get(key) ?? -1;
  }

  has(slot: number): boolean {
    return this.#keys[slot] !== undefined;
  }

  key(slot: number): string {
    return this.#keys[slot] as string;
  }

  /** A view of the stored bytes: never mutate it. */
  value(slot: number): Uint8Array {
    return this.#values.view(slot);
  }

  bytes(slot: number): number {
    return this.#bytes[slot];
  }

  expiresAt(slot: number): number {
    return this.#meta[slot * META + EXPIRES_AT];
  }

  createdAt(slot: number): number {
    return this.#meta[slot * META + CREATED_AT];
  }

  version(slot: number): number {
    return this.#meta[slot * META + VERSION];
  }

  lastAccessed(slot: number): number {
    return this.#meta[slot * META + LAST_ACCESSED];
  }

  /** Replica-local: never part of the replicated state. */
  touch(slot: number, now: number): void {
    this.#meta[slot * META + LAST_ACCESSED] = now;
  }

  *handles(): IterableIterator<number> {
    for (const slot of this.#index.values()) yield slot;
  }

  /**
   * What an eviction policy is given: the view's methods and nothing else, so a plugin
   * cannot reach the table's writes by casting.
   */
  readOnlyView(): EntryTableView {
    const table = this;
    return Object.freeze({
      get size() {
        return table.size;
      },
      get handleLimit() {
        return table.handleLimit;
      },
      has: (slot: number) => table.has(slot),
      key: (slot: number) => table.key(slot),
      bytes: (slot: number) => table.bytes(slot),
      expiresAt: (slot: number) => table.expiresAt(slot),
      createdAt: (slot: number) => table.createdAt(slot),
      version: (slot: number) => table.version(slot),
      lastAccessed: (slot: number) => table.lastAccessed(slot),
      handles: () => table.handles(),
    });
  }

  insert(
    key: string,
    value: Uint8Array,
    bytes: number,
    expiresAt: number,
    createdAt: number,
    version: number,
  ): number {
    const slot = this.#free.length > 0 ? (this.#free.pop() as number) : this.#newSlot();
    key = ownedKey(key);
    this.#index.set(key, slot);
    this.#keys[slot] = key;
    this.#values.store(slot, value);
    this.#bytes[slot] = bytes;
    const base = slot * META;
    this.#meta[base + CREATED_AT] = createdAt;
    this.#meta[base + VERSION] = version;
    this.#meta[base + LAST_ACCESSED] = createdAt;
    this.#meta[base + EXPIRES_AT] = NO_EXPIRY;
    this.#setExpiry(slot, expiresAt);
    this.#totalBytes += bytes;
    return slot;
  }

  /** Replaces the value of a live entry; `createdAt` stays. */
  update(slot: number, value: Uint8Array, bytes: number, expiresAt: number, version: number): void {
    this.#beforeChange(slot);
    this.#values.release(slot);
    this.#values.store(slot, value);
    this.#totalBytes += bytes - this.#bytes[slot];
    this.#bytes[slot] = bytes;
    this.#meta[slot * META + VERSION] = version;
    this.#setExpiry(slot, expiresAt);
  }

  updateExpiry(slot: number, expiresAt: number, version: number): void {
    this.#beforeChange(slot);
    this.#meta[slot * META + VERSION] = version;
    this.#setExpiry(slot, expiresAt);
  }

  remove(slot: number): void {
    this.#beforeChange(slot);
    this.#index.delete(this.#keys[slot] as string);
    this.#setExpiry(slot, NO_EXPIRY);
    this.#totalBytes -= this.#bytes[slot];
    this.#keys[slot] = undefined;
    this.#values.release(slot);
    this.#free.push(slot);
  }

  /**
   * Starts a copy-on-write capture of the entries as they are now, which the caller declares
   * to be the state at `index`. One at a time; `EntryCapture.close` ends it.
   */
  beginCapture(index: number): EntryCapture {
    // One capture at a time: a second would need its own copy-on-write record of old values.
    if (this.#capture !== null) throw new SnapshotInProgressError();
    const capture = new EntryCapture(this, index, this.#highWater, () => {
      this.#capture = null;
    });
    this.#capture = capture;
    return capture;
  }

  /** The entry at `slot` as a capture holds it. */
  read(slot: number): CapturedEntry {
    return {
      key: this.#keys[slot] as string,
      value: this.#values.view(slot),
      expiresAt: this.expiresAt(slot),
      createdAt: this.createdAt(slot),
      version: this.version(slot),
    };
  }

  #beforeChange(slot: number): void {
    const capture = this.#capture;
    if (capture?.wants(slot, this.version(slot))) {
      const entry = this.read(slot);
      entry.value = entry.value.slice();
      capture.preserve(entry);
    }
  }

  #setExpiry(slot: number, expiresAt: number): void {
    const had = this.expiresAt(slot) !== NO_EXPIRY;
    const has = expiresAt !== NO_EXPIRY;
    this.#meta[slot * META + EXPIRES_AT] = expiresAt;
    if (had === has) return;
    if (has) {
      this.#ttlSlots[this.#ttlCount] = slot;
      this.#ttlPos[slot] = this.#ttlCount++;
    } else {
      // Swap-remove keeps the list dense.
      const pos = this.#ttlPos[slot];
      const last = this.#ttlSlots[--this.#ttlCount];
      this.#ttlSlots[pos] = last;
      this.#ttlPos[last] = pos;
      this.#ttlPos[slot] = NOT_INDEXED;
    }
  }

  #newSlot(): number {
    if (this.#highWater === this.#bytes.length) this.#grow(Math.max(16, this.#highWater * 2));
    this.#keys.push(undefined);
    return this.#highWater++;
  }

  #grow(length: number): void {
    this.#meta = grown(this.#meta, new Float64Array(length * META));
    this.#values.grow(length);
    this.#bytes = grown(this.#bytes, new Uint32Array(length));
    this.#ttlSlots = grown(this.#ttlSlots, new Int32Array(length));
    this.#ttlPos = grown(this.#ttlPos, new Int32Array(length));
  }
}

/** V8 makes a substring of this many characters or more a slice of its parent string. */
const SLICE_MIN_LENGTH = 13;

/**
 * A key the table can keep: a flat string of its own. Keys decoded from a log entry are
 * slices of one string holding every string of that entry, so keeping one as is keeps the
 * whole entry's strings alive, and every lookup that compares against it follows a pointer
 * to the parent: another cache miss per GET (about a third of GET time at 100,000 keys).
 * The JSON round trip is the cheapest copy that keeps any string exactly, lone surrogates
 * included; it runs once per insert.
 */
function ownedKey(key: string): string {
  return key.length < SLICE_MIN_LENGTH ? key : (JSON.parse(JSON.stringify(key)) as string);
}

function grown<T extends Float64Array | Uint32Array | Int32Array>(old: T, fresh: T): T {
  fresh.set(old as never);
  return fresh;
}

/** A walk over the entries live at `index`, kept consistent by the table's copy-on-write. */
export class EntryCapture {
  readonly index: number;
  #table: EntryTable;
  #cursor = 0;
  #end: number;
  #preserved: CapturedEntry[] = [];
  #onClose: () => void;
  #closed = false;

  constructor(table: EntryTable, index: number, end: number, onClose: () => void) {
    this.#table = table;
    this.index = index;
    this.#end = end;
    this.#onClose = onClose;
  }

  /** Whether the entry at `slot`, about to change, still has to be captured. */
  wants(slot: number, version: number): boolean {
    return slot >= this.#cursor && slot < this.#end && version <= this.index;
  }

  preserve(entry: CapturedEntry): void {
    this.#preserved.push(entry);
  }

  /**
   * Hands entries to `sink` until at least `budgetBytes` of keys and values went out or the
   * capture is exhausted. Returns false once every entry has been handed out.
   */
  take(budgetBytes: number, sink: (entry: CapturedEntry) => void): boolean {
    invariant(!this.#closed, 'capture is closed');
    const table = this.#table;
    let spent = 0;
    while (spent < budgetBytes) {
      const kept = this.#preserved.pop();
      if (kept !== undefined) {
        sink(kept);
        spent += kept.key.length + kept.value.byteLength;
        continue;
      }
      if (this.#cursor >= this.#end) return false;
      const slot = this.#cursor++;
      if (!table.has(slot) || table.version(slot) > this.index) continue;
      const entry = table.read(slot);
      sink(entry);
      spent += entry.key.length + entry.value.byteLength;
    }
    return this.#cursor < this.#end || this.#preserved.length > 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#preserved = [];
    this.#onClose();
  }
}
