// The leader's book of entries it proposed and has not yet seen applied. An entry's requests
// are answered when the entry at its index applies: with their outcomes if it is the same
// entry (same index AND term), or as unknown if a new leader wrote another entry there or a
// snapshot jumped past it. While an entry is in flight its worst-case byte growth and its
// eviction victims are counted, so the next `prepare` plans room for it and never picks the
// same victim twice (see `PrepareOptions`).

import type { ApplyResult, Outcome, PreparedEntry } from '../cache/index.ts';
import { OutcomeUnknownError } from './errors.ts';

/** A caller waiting for the outcome of one request. */
export interface OutcomeWaiter {
  resolve(outcome: Outcome): void;
  reject(error: Error): void;
}

interface ProposedEntry {
  readonly term: number;
  readonly waiters: readonly OutcomeWaiter[];
  /** For waiter i, the position of its outcome in the entry's outcomes. */
  readonly outcomeIndex: readonly number[];
  readonly bytesDelta: number;
  readonly evictedKeys: readonly string[];
}

export class ProposalTracker {
  readonly #shardId: number;
  readonly #entries = new Map<number, ProposedEntry>();
  readonly #victims = new Set<string>();
  #inflightBytes = 0;

  constructor(shardId: number) {
    this.#shardId = shardId;
  }

  /** Worst-case bytes the entries in flight add: `PrepareOptions.inflightBytes`. */
  get inflightBytes(): number {
    return this.#inflightBytes;
  }

  /** Keys whose eviction is in flight: `PrepareOptions.inflightVictims`. */
  get inflightVictims(): ReadonlySet<string> {
    return this.#victims;
  }

  /** Records an entry appended at `index` in `term`; `waiters[i]` asked for request i. */
  track(
    index: number,
    term: number,
    waiters: readonly OutcomeWaiter[],
    prepared: Pick<PreparedEntry, 'outcomeIndex' | 'bytesDelta' | 'evictedKeys'>,
  ): void {
    this.#entries.set(index, {
      term,
      waiters,
      outcomeIndex: prepared.outcomeIndex,
      bytesDelta: prepared.bytesDelta,
      evictedKeys: prepared.evictedKeys,
    });
    this.#inflightBytes += prepared.bytesDelta;
    for (const key of prepared.evictedKeys) this.#victims.add(key);
  }

  /**
   * The entry at `index` of `term` applied, with `result` when it was a cache entry. Answers
   * whoever proposed something at that index.
   */
  settle(index: number, term: number, result: ApplyResult | undefined): void {
    const entry = this.#take(index);
    if (entry === undefined) return;
    if (entry.term !== term || result === undefined) {
      this.#failUnknown(index, entry, 'another entry took its place in the log');
      return;
    }
    for (let i = 0; i < entry.waiters.length; i++) {
      entry.waiters[i].resolve(
        result.refused !== undefined
          ? { status: 'refused', code: result.refused }
          : result.outcomes[entry.outcomeIndex[i]],
      );
    }
  }

  /** A snapshot was installed up to `index`: entries at or below it were never seen applied. */
  settleUpTo(index: number): void {
    for (const at of [...this.#entries.keys()]) {
      if (at > index) continue;
      this.#failUnknown(at, this.#take(at) as ProposedEntry, 'a snapshot was installed past it');
    }
  }

  /** Whether some entry waits to be seen applied. */
  get pending(): boolean {
    return this.#entries.size > 0;
  }

  /**
   * Answers every entry as unknown: this replica may never learn what became of them (it
   * was deposed and cut off, or it is closing: `why` says). Each reached the log, so it may
   * still apply; a retry with the same write id applies it at most once.
   */
  abandon(why: string): void {
    for (const at of [...this.#entries.keys()])
      this.#failUnknown(at, this.#take(at) as ProposedEntry, why);
  }

  #take(index: number): ProposedEntry | undefined {
    const entry = this.#entries.get(index);
    if (entry === undefined) return undefined;
    this.#entries.delete(index);
    this.#inflightBytes -= entry.bytesDelta;
    for (const key of entry.evictedKeys) this.#victims.delete(key);
    return entry;
  }

  #failUnknown(index: number, entry: ProposedEntry, why: string): void {
    const error = new OutcomeUnknownError(this.#shardId, index, why);
    for (const waiter of entry.waiters) waiter.reject(error);
  }
}
