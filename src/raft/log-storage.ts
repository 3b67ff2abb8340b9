import { invariant } from './invariant.ts';
import {
  type ConfState,
  EMPTY_HARD_STATE,
  EMPTY_SNAPSHOT,
  type Entry,
  type HardState,
  type SnapshotMeta,
} from './types.ts';

/**
 * The part of the log that the host has made durable, as the core reads it. Reads are
 * synchronous: the core never waits. The core never writes here; the host writes what a
 * `Ready` hands it (see `Ready`), and a durable store (the LevelDB WAL) replays itself into
 * this at start.
 */
export interface LogStorage {
  /** The hard state last persisted. */
  hardState(): HardState;
  /** The latest snapshot taken or installed (index 0 when none). */
  snapshot(): SnapshotMeta;
  /** Index of the first entry still held (entries before it were compacted). */
  firstIndex(): number;
  /** Index of the last entry held; `firstIndex() - 1` when empty. */
  lastIndex(): number;
  /** Term of the entry at `index`, for `firstIndex() - 1 <= index <= lastIndex()`. */
  term(index: number): number | undefined;
  /**
   * Entries in [lo, hi), at least one if any, then as many as fit in `maxBytes` (counted by
   * `entrySize`). Requires `firstIndex() <= lo <= hi <= lastIndex() + 1`.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
}

/** Bytes an entry costs in a message: its data plus a fixed allowance for index and term. */
export function entrySize(entry: Entry): number {
  return entry.data.byteLength + 16;
}

/**
 * Appends to `out` the entries of `source` (which holds index `offset` at position 0) in
 * [lo, hi), stopping before the first that would take the total past `maxBytes` (the first
 * entry always goes). Returns the bytes taken.
 */
export function collectEntries(
  source: readonly Entry[],
  offset: number,
  lo: number,
  hi: number,
  maxBytes: number,
  out: Entry[],
  bytesSoFar: number,
): number {
  let bytes = bytesSoFar;
  for (let i = lo; i < hi; i++) {
    const entry = source[i - offset];
    const size = entrySize(entry);
    if (out.length > 0 && bytes + size > maxBytes) break;
    out.push(entry);
    bytes += size;
  }
  return bytes;
}

function sentinel(index: number, term: number): Entry {
  return { term, index, type: 'normal', data: new Uint8Array(0) };
}

/**
 * The log kept in memory: `#entries[0]` is a sentinel standing for the last compacted entry
 * (index 0, term 0 for a fresh log), so `term(firstIndex() - 1)` is always answerable. The
 * log never starts after the snapshot: `firstIndex() - 1 <= snapshot().index`, so a follower
 * that is sent the snapshot finds every entry after it here.
 */
export class MemoryLogStorage implements LogStorage {
  #hardState: HardState = EMPTY_HARD_STATE;
  #snapshot: SnapshotMeta = EMPTY_SNAPSHOT;
  #entries: Entry[] = [sentinel(0, 0)];

  hardState(): HardState {
    return this.#hardState;
  }

  snapshot(): SnapshotMeta {
    return this.#snapshot;
  }

  /**
   * Records that the host took a snapshot of its state at `index` (applied, so committed),
   * when the configuration was `conf` (`RaftNode.confStateAt(index)`).
   */
  createSnapshot(index: number, conf: ConfState): SnapshotMeta {
    invariant(
      index > this.#snapshot.index && index <= this.lastIndex(),
      () => `snapshot at ${index} outside (${this.#snapshot.index}, ${this.lastIndex()}]`,
    );
    this.#snapshot = { index, term: this.term(index) as number, conf };
    return this.#snapshot;
  }

  /** Drops the entries before `index`; the entry at `index` becomes the sentinel. */
  compact(index: number): void {
    const offset = this.#entries[0].index;
    if (index <= offset) return;
    invariant(
      index <= this.#snapshot.index,
      () => `compacting to ${index} past the snapshot at ${this.#snapshot.index}`,
    );
    const kept = this.#entries.slice(index - offset);
    kept[0] = sentinel(index, kept[0].term);
    this.#entries = kept;
  }

  /**
   * Installs a snapshot received from the leader: the log becomes empty after it, whatever
   * it held. (An entry at the snapshot's index and term would mean the log agrees; the core
   * only hands out a snapshot to install when it does not.)
   */
  applySnapshot(snapshot: SnapshotMeta): void {
    invariant(
      snapshot.index > this.#snapshot.index,
      () => `snapshot at ${snapshot.index} is older than the one held (${this.#snapshot.index})`,
    );
    this.#snapshot = snapshot;
    this.#entries = [sentinel(snapshot.index, snapshot.term)];
    if (this.#hardState.commit < snapshot.index) {
      this.#hardState = { ...this.#hardState, commit: snapshot.index };
    }
  }

  firstIndex(): number {
    return this.#entries[0].index + 1;
  }

  lastIndex(): number {
    return this.#entries[0].index + this.#entries.length - 1;
  }

  term(index: number): number | undefined {
    const offset = this.#entries[0].index;
    if (index < offset || index > offset + this.#entries.length - 1) return undefined;
    return this.#entries[index - offset].term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    invariant(
      lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo <= hi,
      () => `storage read [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`,
    );
    const out: Entry[] = [];
    collectEntries(this.#entries, this.#entries[0].index, lo, hi, maxBytes, out, 0);
    return out;
  }

  setHardState(hardState: HardState): void {
    this.#hardState = hardState;
  }

  /**
   * Appends entries handed out by a `Ready`. Entries at or after the first new index are
   * replaced: the core only hands out a suffix that overwrites on a real conflict.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    const offset = this.#entries[0].index;
    invariant(
      first > offset && first <= this.lastIndex() + 1,
      () => `append at ${first} leaves a gap after ${this.lastIndex()} (first kept ${offset})`,
    );
    this.#entries.length = first - offset;
    for (const entry of entries) this.#entries.push(entry);
  }
}
