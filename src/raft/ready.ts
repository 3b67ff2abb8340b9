import type { Entry, HardState, Message, NodeId, Role, SnapshotMeta } from './types.ts';

/**
 * A read that may now be served: once this node has applied `index`, its state answers the
 * read with id `context` linearizably.
 */
export interface ReadState {
  readonly context: number;
  readonly index: number;
}

/** Who leads, as this node believes; not persisted. */
export interface SoftState {
  readonly lead: NodeId;
  readonly role: Role;
}

/**
 * Everything the core wants done, collected by `RaftNode.ready()`. The host handles one
 * `Ready` at a time, in this order, then calls `advance(ready)`:
 *
 * 1. Persist `snapshot` (if present, with the data received for it), then `hardState` (if
 *    present), then append `entries`, durably, as one atomic write where the store allows
 *    (a crash between them must leave the snapshot's index and term, the first log index
 *    and the hard state in agreement). Restore the state machine from the snapshot.
 * 2. Only then send `messages`. A vote grant, an append acknowledgement and a commit index
 *    each promise something about the state written in step 1; sent before it is durable, a
 *    crash would break the promise (a second vote in one term, an acknowledged entry lost).
 *    A `snap` message carries no data: stream the snapshot's data to its receiver on the
 *    snapshot path, deliver the message after it, and report the outcome with
 *    `reportSnapshot`.
 * 3. Apply `committedEntries` to the state machine, in order; serve each of `readStates`
 *    once the applied index reaches it; fail the reads in `failedReads` (retry them, perhaps
 *    on the leader `softState` names).
 * 4. Call `advance(ready)`.
 *
 * The host may step messages and propose between `ready()` and `advance()`; what they
 * produce goes into the next `Ready`.
 */
export interface Ready {
  /** Present when leadership or role changed since the last `Ready`. */
  readonly softState: SoftState | undefined;
  /** Present when it changed since the last `Ready`. */
  readonly hardState: HardState | undefined;
  /** A snapshot from the leader to install: persist it and restore the state machine from it. */
  readonly snapshot: SnapshotMeta | undefined;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  /** Reads that will never get a read state here (leadership changed, no leader, refused). */
  readonly failedReads: readonly number[];
}
