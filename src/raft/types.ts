/** Replica ids are positive integers; `NONE` means "no node" (no vote, no known leader). */
export type NodeId = number;
export const NONE: NodeId = 0;

/**
 * Who is in a group: voters elect and make up quorums; learners receive the log and
 * snapshots but never vote, campaign or count toward a quorum.
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/**
 * `normal` entries carry the host's data (an empty `data` is the no-op a new leader appends);
 * `conf` entries carry a whole new configuration (see `membership.ts`).
 */
export type EntryType = 'normal' | 'conf';

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What a node must remember across restarts, or it may vote twice or forget commits. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 };

/**
 * What a snapshot stands for: the state after applying every entry up to `index` (whose term
 * was `term`), and the configuration then. The state itself is the host's: a `snap` message carries
 * only this, and the host streams the data on its own path.
 */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly conf: ConfState;
}

export const EMPTY_SNAPSHOT: SnapshotMeta = {
  index: 0,
  term: 0,
  conf: { voters: [], learners: [] },
};

/** A `preCandidate` asks whether it could win before it raises its term (pre-vote). */
export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/**
 * Messages between replicas of one group, and the local ones the host feeds in.
 * - `hup`: local; start an election now.
 * - `beat`: local; the leader sends heartbeats now.
 * - `prop`: a proposal (local, or forwarded by a follower to the leader).
 * - `app` / `appResp`: append entries and its answer.
 * - `heartbeat` / `heartbeatResp`: leadership and commit index, without entries.
 * - `vote` / `voteResp`: a candidate asking for a vote and the answer.
 * - `preVote` / `preVoteResp`: would you vote for me in the next term? Nobody's term changes.
 * - `timeoutNow`: a leader handing over leadership tells the target to campaign at once.
 * - `readIndex` / `readLease` / `readIndexResp`: a follower asks the leader for a read index
 *   (confirmed by a heartbeat round, or under the leader's lease) and gets it, or a refusal.
 * - `snap`: the leader tells a follower to install the snapshot in `snapshot`; the host sends
 *   the snapshot's data on its own path first and delivers this message once the data is in.
 */
export type MessageType = (typeof MESSAGE_TYPES)[number];

/**
 * Every message type, in a fixed order: the peer wire sends a type as its position here
 * (src/transport/peer-codec.ts), so a new type goes at the end and none moves.
 */
export const MESSAGE_TYPES = [
  'hup',
  'beat',
  'prop',
  'app',
  'appResp',
  'heartbeat',
  'heartbeatResp',
  'vote',
  'voteResp',
  'preVote',
  'preVoteResp',
  'timeoutNow',
  'readIndex',
  'readLease',
  'readIndexResp',
  'snap',
] as const;

/**
 * One shape for every message (fields a type does not use stay at their zero value), so
 * the hot path works on objects of a single hidden class.
 *
 * - `index`, `logTerm`: for `app`, the entry before `entries` (the consistency check); for
 *   `appResp`, the last index the follower now matches, or on rejection the probed index;
 *   for `vote`, the candidate's last index and term.
 * - `rejectHint`, `logTerm` on a rejected `appResp`: the follower's best guess of where the
 *   logs could agree, so the leader skips a whole term per round trip.
 * - `index` on a `readIndexResp`: the read index granted (`reject` when refused).
 * - `context`: for `heartbeat` / `heartbeatResp`, the read round it confirms; for
 *   `readIndex` / `readLease` / `readIndexResp`, the requester's id for the read; for `vote` /
 *   `preVote`, `CAMPAIGN_TRANSFER` when the election is a leader transfer.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly context: number;
  /** For `snap`: which snapshot to install. */
  readonly snapshot: SnapshotMeta | undefined;
}

/** `context` of a vote request sent because the leader handed leadership over. */
export const CAMPAIGN_TRANSFER = 1;

const NO_ENTRIES: readonly Entry[] = Object.freeze([]);

/** A message's fields: its type, and whichever others are not at their zero value. */
export type MessageFields = Partial<Message> & Pick<Message, 'type'>;

/** A message from `fields`; `from` and `term`, when given, win over the fields' own. */
export function message(fields: MessageFields, from?: NodeId, term?: number): Message {
  return {
    type: fields.type,
    from: from ?? fields.from ?? NONE,
    to: fields.to ?? NONE,
    term: term ?? fields.term ?? 0,
    logTerm: fields.logTerm ?? 0,
    index: fields.index ?? 0,
    entries: fields.entries ?? NO_ENTRIES,
    commit: fields.commit ?? 0,
    reject: fields.reject ?? false,
    rejectHint: fields.rejectHint ?? 0,
    context: fields.context ?? 0,
    snapshot: fields.snapshot,
  };
}

/** Messages that only ever travel from the host into its own node. */
export function isLocalMessage(type: MessageType): boolean {
  return type === 'hup' || type === 'beat';
}

/**
 * Requests a follower passes on to whichever node leads: they carry no term (0), so a change
 * of term does not void them and they never change anyone's term.
 */
export function isTermless(type: MessageType): boolean {
  return type === 'prop' || type === 'readIndex' || type === 'readLease';
}
