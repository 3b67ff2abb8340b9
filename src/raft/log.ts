import { invariant } from './invariant.ts';
import { collectEntries, entrySize, type LogStorage } from './log-storage.ts';
import type { Entry, SnapshotMeta } from './types.ts';

/**
 * The log as the core sees it: the durable prefix in `storage`, then the `unstable` entries
 * appended here but not yet persisted by the host. Unstable entries start at `#unstableFrom`
 * and may overlap the end of storage when a new leader overwrote a persisted suffix; they
 * win over what storage holds at the same index. A snapshot received from the leader and not
 * yet persisted (`#pendingSnapshot`) replaces everything storage holds up to its index.
 */
export class RaftLog {
  readonly storage: LogStorage;
  #unstable: Entry[] = [];
  #unstableFrom: number;
  #pendingSnapshot: SnapshotMeta | undefined;
  /** Highest index known to be on a majority. */
  committed: number;
  /** Highest index handed to the host to apply. */
  applied: number;

  constructor(storage: LogStorage, applied = 0) {
    this.storage = storage;
    this.#unstableFrom = storage.lastIndex() + 1;
    // A snapshot is committed state, whether or not the hard state written with it says so.
    this.committed = Math.max(storage.hardState().commit, storage.snapshot().index);
    invariant(
      applied <= this.committed,
      () => `applied ${applied} is past the committed index ${this.committed}`,
    );
    this.applied = Math.max(applied, storage.firstIndex() - 1);
  }

  firstIndex(): number {
    return this.#pendingSnapshot ? this.#pendingSnapshot.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.#unstable.length > 0) return this.#unstableFrom + this.#unstable.length - 1;
    return this.#pendingSnapshot ? this.#pendingSnapshot.index : this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** The term at `index`, or undefined when the entry was compacted or does not exist yet. */
  term(index: number): number | undefined {
    if (index >= this.#unstableFrom) {
      const entry = this.#unstable[index - this.#unstableFrom];
      return entry === undefined ? undefined : entry.term;
    }
    if (this.#pendingSnapshot) {
      return index === this.#pendingSnapshot.index ? this.#pendingSnapshot.term : undefined;
    }
    return this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: a log is at least as up to date if its last term is higher, or equal and no shorter. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myLastTerm = this.lastTerm();
    return lastTerm > myLastTerm || (lastTerm === myLastTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The index of the first of `entries` that is new or conflicts with this log (same index,
   * other term), or 0 when every one is already here. An entry already present is never a
   * reason to truncate: appends arrive duplicated and reordered.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The last index at or before `index` whose term is at most `term`, with that term: where
   * this log could still agree with a log that has `term` at `index`. Lets a rejection skip
   * a whole term, and lets the leader skip one more on its side. Stops at the compacted
   * boundary, whose term is always known.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    const floor = this.firstIndex() - 1;
    for (; i > floor; i--) {
      const t = this.term(i) ?? 0;
      if (t <= term) return { index: i, term: t };
    }
    return { index: floor, term: this.term(floor) ?? 0 };
  }

  /**
   * Puts `entries` (consecutive) at their indexes, dropping whatever this log held from the
   * first of them on. Never below the committed index: that would lose committed entries.
   */
  truncateAndAppend(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    invariant(
      first > this.committed,
      () => `would overwrite committed entry ${first} (committed ${this.committed})`,
    );
    invariant(
      first <= this.lastIndex() + 1,
      () => `append at ${first} leaves a gap after ${this.lastIndex()}`,
    );
    if (first < this.#unstableFrom) {
      // Replacing entries the host already persisted: the host's append truncates them too.
      this.#unstable = [];
      this.#unstableFrom = first;
    } else {
      this.#unstable.length = first - this.#unstableFrom;
    }
    for (const entry of entries) this.#unstable.push(entry);
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    invariant(
      index <= this.lastIndex(),
      () => `commit ${index} is past the last index ${this.lastIndex()}: the log lost entries`,
    );
    this.committed = index;
    return true;
  }

  /** Entries in [lo, hi), limited to `maxBytes` (at least one entry when the range is not empty). */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    invariant(
      lo >= this.firstIndex() && hi <= this.lastIndex() + 1,
      () => `slice [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`,
    );
    if (lo >= hi) return [];
    const storedEnd = Math.min(hi, this.#unstableFrom);
    let out: Entry[] = [];
    let bytes = 0;
    if (lo < storedEnd) {
      out = this.storage.entries(lo, storedEnd, maxBytes);
      if (out.length < storedEnd - lo) return out;
      for (const entry of out) bytes += entrySize(entry);
    }
    const from = Math.max(lo, this.#unstableFrom);
    collectEntries(this.#unstable, this.#unstableFrom, from, hi, maxBytes, out, bytes);
    return out;
  }

  /** Entries the host has yet to persist (a copy: the log may change while the host writes). */
  unstableEntries(): Entry[] {
    return this.#unstable.slice();
  }

  hasUnstableEntries(): boolean {
    return this.#unstable.length > 0;
  }

  /** Committed entries not yet handed out to apply (none that a snapshot covers). */
  nextCommittedEntries(maxBytes: number): Entry[] {
    return this.slice(this.#firstToApply(), this.committed + 1, maxBytes);
  }

  hasNextCommittedEntries(): boolean {
    return this.committed >= this.#firstToApply();
  }

  #firstToApply(): number {
    return Math.max(this.applied + 1, this.firstIndex());
  }

  /**
   * Replaces the whole log by a snapshot of the leader's state (which this log does not
   * agree with at the snapshot's index): the host persists it and restores its state
   * machine from it, as the next `Ready` says.
   */
  restore(snapshot: SnapshotMeta): void {
    invariant(
      snapshot.index > this.committed,
      () =>
        `restoring a snapshot at ${snapshot.index}, at or below the commit index ${this.committed}`,
    );
    this.#pendingSnapshot = snapshot;
    this.#unstable = [];
    this.#unstableFrom = snapshot.index + 1;
    this.committed = snapshot.index;
  }

  /** The snapshot the host has to persist and restore, if any. */
  pendingSnapshot(): SnapshotMeta | undefined {
    return this.#pendingSnapshot;
  }

  /** The host persisted the snapshot at `index` and restored its state machine from it. */
  snapshotStableTo(index: number): void {
    if (this.#pendingSnapshot?.index !== index) return;
    this.#pendingSnapshot = undefined;
    this.applied = Math.max(this.applied, index);
  }

  /**
   * The host persisted entries up to `index` (of `term`). If the log changed underneath since
   * (a new leader replaced that entry), nothing is stable yet: the new entries follow.
   */
  stableTo(index: number, term: number): void {
    if (this.#unstable.length === 0 || index < this.#unstableFrom) return;
    if (this.term(index) !== term) return;
    this.#unstable = this.#unstable.slice(index + 1 - this.#unstableFrom);
    this.#unstableFrom = index + 1;
  }

  appliedTo(index: number): void {
    invariant(
      index <= this.committed && index >= this.applied,
      () => `applied ${index} outside [${this.applied}, ${this.committed}]`,
    );
    this.applied = index;
  }
}
