import type { LogStorage } from './log-storage.ts';
import type { RandomSource } from './random.ts';
import type { NodeId } from './types.ts';

export interface RaftConfig {
  /** This replica's id (never `NONE`). */
  readonly id: NodeId;
  /**
   * The voting members when the log holds no configuration: a new group's bootstrap. A
   * replica joining an existing group passes none, learns the group's configuration from the
   * leader's log or snapshot, and neither campaigns nor votes until it is made a voter.
   */
  readonly voters: readonly NodeId[];
  readonly learners?: readonly NodeId[];
  readonly storage: LogStorage;
  readonly random: RandomSource;
  /** Ticks without hearing a leader before campaigning; randomized in [n, 2n). */
  readonly electionTicks: number;
  /** Ticks between a leader's heartbeats; well below `electionTicks`. */
  readonly heartbeatTicks: number;
  /**
   * A tick count shared by the replicas of one host. With it a leader heartbeats on the
   * ticks that are multiples of `heartbeatTicks`, so all the host's shards heartbeat in the
   * same turn and their messages share one frame per peer; without it each replica counts
   * its own ticks.
   */
  readonly heartbeatClock?: () => number;
  /** Soft limit on the bytes of entries in one append message (one entry always fits). */
  readonly maxBytesPerAppend?: number;
  /** Appends in flight to one follower in the replicate state. */
  readonly maxInflightAppends?: number;
  /**
   * Bytes of entries a leader holds appended but not committed before it refuses proposals:
   * a leader cut off from its followers refuses instead of growing. One proposal is always
   * taken when nothing is pending, however large.
   */
  readonly maxUncommittedBytes?: number;
  /** Limit on the bytes of committed entries handed out by one `Ready`. */
  readonly maxApplyBytes?: number;
  /** Index already applied by the host's state machine (on restart). */
  readonly applied?: number;
  /** Forward a follower's proposals to the leader, instead of refusing them. */
  readonly forwardProposals?: boolean;
  /** Ask whether an election could be won before raising the term (default on). */
  readonly preVote?: boolean;
  /**
   * A leader that has not heard from a majority for an election timeout steps down, and a
   * follower that hears a leader ignores vote requests for an election timeout (default on).
   */
  readonly checkQuorum?: boolean;
  /** A monotonic clock in milliseconds: only lease reads use it. Ticks never measure time. */
  readonly clock?: () => number;
  /**
   * Lease reads, allowed only with check-quorum: the nominal tick interval, and the margin
   * for clocks running at different rates. The lease lasts
   * `(electionTicks - 1) × tickMs - leaseDriftMarginMs` from when its heartbeat round was
   * sent; without `tickMs` there are no leases. With leases the host must never tick faster
   * than one tick per `tickMs` of real time (no catching up after a stall): a follower's
   * stickiness, which the lease rests on, is counted in ticks.
   */
  readonly tickMs?: number;
  readonly leaseDriftMarginMs?: number;
}

/**
 * What became of a proposal. `appended`: in the leader's log at these indexes (committed
 * only if that entry of that term is later applied; a new leader may overwrite it).
 * `forwarded`: sent to the leader; the host learns its fate only by seeing it applied.
 * `refused`: not taken; `leader` names the leader when one is known.
 */
export type ProposeResult =
  | {
      readonly kind: 'appended';
      readonly term: number;
      readonly firstIndex: number;
      readonly lastIndex: number;
    }
  | { readonly kind: 'forwarded'; readonly leader: NodeId }
  | {
      readonly kind: 'refused';
      readonly reason:
        | 'no-leader'
        | 'not-leader'
        | 'transferring'
        | 'overloaded'
        | 'conf-change-pending'
        | 'invalid-conf-change';
      readonly leader: NodeId;
    };

/** What became of a request to hand leadership to another voter. */
export type TransferResult =
  | 'started'
  | 'in-progress'
  | 'already-leader'
  | 'not-leader'
  | 'not-a-voter';

/** How a read confirms that this node's data is current: a heartbeat round, or the lease. */
export type ReadMode = 'read-index' | 'lease';

export const DEFAULT_MAX_BYTES_PER_APPEND = 1 << 20;
export const DEFAULT_MAX_INFLIGHT_APPENDS = 256;
export const DEFAULT_MAX_UNCOMMITTED_BYTES = 64 << 20;
export const DEFAULT_MAX_APPLY_BYTES = 64 << 20;
