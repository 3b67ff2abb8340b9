import { invariant } from './invariant.ts';
import type { LogStorage } from './log-storage.ts';
import type { ConfState, NodeId } from './types.ts';

/**
 * One server at a time (§4.2 of Ongaro's thesis): add a voter (or promote a learner), add a
 * learner, or remove a member. Any two configurations one change apart have overlapping
 * majorities, so no joint consensus is needed.
 */
export interface ConfChange {
  readonly type: 'add-voter' | 'add-learner' | 'remove';
  readonly id: NodeId;
}

/** The configuration after `change`, or why the change makes no sense against `conf`. */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState | string {
  const isVoter = conf.voters.includes(change.id);
  const isLearner = conf.learners.includes(change.id);
  const without = (ids: readonly NodeId[]) => ids.filter((id) => id !== change.id);
  switch (change.type) {
    case 'add-voter':
      if (isVoter) return `${change.id} is already a voter`;
      return { voters: [...conf.voters, change.id], learners: without(conf.learners) };
    case 'add-learner':
      if (isVoter) return `${change.id} is a voter; demoting a voter is not supported`;
      if (isLearner) return `${change.id} is already a learner`;
      return { voters: conf.voters, learners: [...conf.learners, change.id] };
    case 'remove':
      if (!isVoter && !isLearner) return `${change.id} is not a member`;
      if (isVoter && conf.voters.length === 1) return 'cannot remove the last voter';
      return { voters: without(conf.voters), learners: without(conf.learners) };
  }
}

/** A configuration entry's data: the whole new configuration, so any one entry says it all. */
export function encodeConfState(conf: ConfState): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ voters: conf.voters, learners: conf.learners }));
}

export function decodeConfState(data: Uint8Array): ConfState {
  const parsed = JSON.parse(new TextDecoder().decode(data)) as ConfState;
  invariant(
    Array.isArray(parsed.voters) && Array.isArray(parsed.learners),
    'malformed configuration entry',
  );
  return { voters: parsed.voters, learners: parsed.learners };
}

/**
 * The configurations in a node's log, oldest first, from its base (the snapshot's, or the
 * bootstrap one at index 0). A configuration takes effect when its entry is appended,
 * committed or not (§4.1), so a truncated entry takes its configuration with it.
 */
export class ConfHistory {
  #changes: { readonly index: number; readonly conf: ConfState }[];

  constructor(index: number, conf: ConfState) {
    this.#changes = [{ index, conf }];
  }

  current(): ConfState {
    return this.#changes[this.#changes.length - 1].conf;
  }

  /** The index of the entry that set the current configuration. */
  currentIndex(): number {
    return this.#changes[this.#changes.length - 1].index;
  }

  /** The configuration in effect once `index` is applied (for a snapshot taken there). */
  at(index: number): ConfState {
    let conf = this.#changes[0].conf;
    for (const change of this.#changes) {
      if (change.index > index) break;
      conf = change.conf;
    }
    return conf;
  }

  record(index: number, conf: ConfState): void {
    this.#changes.push({ index, conf });
  }

  /** Entries from `index` on are gone: so are their configurations. Returns whether any was. */
  truncateFrom(index: number): boolean {
    const kept = this.#changes.filter((change, i) => i === 0 || change.index < index);
    const changed = kept.length !== this.#changes.length;
    this.#changes = kept;
    return changed;
  }

  /** A snapshot replaced the log. */
  reset(index: number, conf: ConfState): void {
    this.#changes = [{ index, conf }];
  }
}

/**
 * A restarted node's configurations: the snapshot's (or, with no snapshot, the bootstrap
 * one), then every one in the stored log after it.
 */
export function confHistoryFromStorage(storage: LogStorage, bootstrap: ConfState): ConfHistory {
  const snapshot = storage.snapshot();
  const history =
    snapshot.index > 0
      ? new ConfHistory(snapshot.index, snapshot.conf)
      : new ConfHistory(0, { voters: [...bootstrap.voters], learners: [...bootstrap.learners] });
  const last = storage.lastIndex();
  for (let lo = Math.max(storage.firstIndex(), snapshot.index + 1); lo <= last; ) {
    const batch = storage.entries(lo, last + 1, 1 << 20);
    for (const entry of batch) {
      if (entry.type === 'conf') history.record(entry.index, decodeConfState(entry.data));
    }
    lo += batch.length;
  }
  return history;
}
