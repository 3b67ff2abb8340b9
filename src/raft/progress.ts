import { Inflights } from './inflights.ts';

/**
 * How the leader replicates to one follower:
 * - `probe`: the match is unknown; one append at a time until one is accepted;
 * - `replicate`: the follower is in line; appends stream, up to the inflight window;
 * - `snapshot`: the follower needs entries already compacted away; nothing is sent until the
 *   host reports the snapshot transfer done or failed (or the follower answers past it).
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** The leader's view of one follower's log (etcd's tracker.Progress, in spirit). */
export class Progress {
  /** Highest index known to be on the follower. */
  match = 0;
  /** Next index to send. */
  next: number;
  state: ProgressState = 'probe';
  /** In `probe`: an append was sent and not yet answered (a heartbeat response resumes). */
  probeSent = false;
  /** Highest commit index sent to the follower: an ack that leaves it behind gets a fresh one. */
  sentCommit = 0;
  /** Heard from since the last check (for check-quorum). */
  recentActive = false;
  /** In `snapshot`: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      default:
        return true;
    }
  }

  /** Back to one append at a time; after a snapshot, from just past it. */
  becomeProbe(): void {
    const afterSnapshot = this.state === 'snapshot' ? this.pendingSnapshot + 1 : 0;
    this.state = 'probe';
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.next = Math.max(this.match + 1, afterSnapshot);
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.next = this.match + 1;
    this.inflights.reset();
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.state = 'snapshot';
    this.probeSent = false;
    this.pendingSnapshot = snapshotIndex;
    this.inflights.reset();
  }

  /** An append up to `lastIndex` went out. */
  sentEntries(lastIndex: number): void {
    if (this.state === 'replicate') {
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex);
    } else {
      this.probeSent = true;
    }
  }

  /** The follower acknowledged `index`; false when that is old news. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * The follower rejected an append after `rejected`; `matchHint` is where the logs may
   * agree. Returns false for a stale rejection (one that no longer says anything new).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }
}
