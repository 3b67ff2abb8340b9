// What a raft message from a peer must look like before a replica may step it. The core
// trusts its messages (a broken one trips an invariant), so everything that arrives from the
// network is checked here first: by shape (`messageProblem`: known type, ids, integer terms
// and indexes in range, entries consistent with the append carrying them), and against the
// receiver's log (`messageProblemFor`: claims no correct peer could make). Both return why a
// message is refused, or undefined when it may be stepped. Fields may hold any value a peer
// sent, whatever the types say.
import { decodeConfState } from './membership.ts';
import {
  isLocalMessage,
  isTermless,
  MESSAGE_TYPES,
  type Message,
  type MessageType,
  NONE,
} from './types.ts';

export interface MessageLimits {
  /** Entries one message may carry. */
  readonly maxEntries: number;
  /** Bytes of entry data one message may carry. */
  readonly maxEntryBytes: number;
  /** Members (voters and learners) a configuration may name. */
  readonly maxMembers: number;
}

export const DEFAULT_MESSAGE_LIMITS: MessageLimits = {
  maxEntries: 1 << 17,
  maxEntryBytes: 64 << 20,
  maxMembers: 1_024,
};

// A Set, not a lookup in a plain object: `constructor` or `__proto__` is no message type.
const KNOWN_TYPES: ReadonlySet<string> = new Set(MESSAGE_TYPES);

export function isMessageType(value: unknown): value is MessageType {
  return typeof value === 'string' && KNOWN_TYPES.has(value);
}

/** Terms, indexes, counters: what arithmetic on them keeps exact. */
function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** A replica id: a positive safe integer (`NONE` is no replica). */
function isReplicaId(value: unknown): value is number {
  return isCount(value) && value !== NONE;
}

const COUNT_FIELDS = ['term', 'logTerm', 'index', 'commit', 'rejectHint', 'context'] as const;

/** Why `m`, as a peer sent it, is not a message a correct peer sends; undefined if it is. */
export function messageProblem(
  m: Message,
  limits: MessageLimits = DEFAULT_MESSAGE_LIMITS,
): string | undefined {
  if (!isMessageType(m.type)) return `unknown message type ${String(m.type)}`;
  if (isLocalMessage(m.type)) return `${m.type} is local to a node and never sent`;
  if (!isReplicaId(m.from) || !isReplicaId(m.to)) return `${m.type} between bad replica ids`;
  if (m.from === m.to) return `${m.type} from replica ${m.from} to itself`;
  for (const field of COUNT_FIELDS) {
    if (!isCount(m[field])) return `${m.type} with ${field} ${String(m[field])}`;
  }
  if (typeof m.reject !== 'boolean') return `${m.type} whose reject is not a boolean`;
  if (isTermless(m.type) && m.term !== 0) return `${m.type} carries a term`;
  if (!Array.isArray(m.entries)) return `${m.type} whose entries are not a list`;
  if (m.entries.length > 0 && m.type !== 'app' && m.type !== 'prop')
    return `${m.type} carries entries`;
  if (m.type === 'app') {
    const problem = appendProblem(m, limits);
    if (problem !== undefined) return problem;
  } else if (m.type === 'prop') {
    if (m.entries.length > limits.maxEntries) return `prop of ${m.entries.length} entries`;
  }
  if (m.type === 'snap') return snapshotProblem(m, limits);
  if (m.snapshot !== undefined) return `${m.type} carries a snapshot`;
  return undefined;
}

/**
 * Why `m` cannot come from a correct peer of a replica whose log ends at `lastIndex`:
 * an acknowledgement of entries the leader never had, or a commit index past the entries the
 * follower holds (a leader only sends a follower the commit index it is known to match).
 */
export function messageProblemFor(m: Message, lastIndex: number): string | undefined {
  if (m.type === 'appResp' && !m.reject && m.index > lastIndex)
    return `appResp acknowledges index ${m.index}, past the last index ${lastIndex}`;
  if (m.type === 'heartbeat' && m.commit > lastIndex)
    return `heartbeat commits ${m.commit}, past the last index ${lastIndex}`;
  return undefined;
}

/** Entries of an append: consecutive after `index`, of terms from `logTerm` to `term`. */
function appendProblem(m: Message, limits: MessageLimits): string | undefined {
  if (m.entries.length > limits.maxEntries) return `app of ${m.entries.length} entries`;
  let bytes = 0;
  let previousTerm = m.logTerm;
  for (let i = 0; i < m.entries.length; i++) {
    const entry = m.entries[i];
    if (typeof entry !== 'object' || entry === null) return 'app with a malformed entry';
    if (entry.index !== m.index + 1 + i) return `app whose entry ${i} is not at ${m.index + 1 + i}`;
    if (!isCount(entry.term) || entry.term < previousTerm || entry.term > m.term)
      return `app entry ${entry.index} of term ${String(entry.term)}`;
    previousTerm = entry.term;
    if (!(entry.data instanceof Uint8Array)) return `app entry ${entry.index} without data`;
    bytes += entry.data.byteLength;
    if (bytes > limits.maxEntryBytes) return `app of more than ${limits.maxEntryBytes} bytes`;
    if (entry.type === 'conf') {
      if (confProblem(() => decodeConfState(entry.data), limits) !== undefined)
        return `app entry ${entry.index} holds no configuration`;
    } else if (entry.type !== 'normal') {
      return `app entry ${entry.index} of type ${String(entry.type)}`;
    }
  }
  return undefined;
}

function snapshotProblem(m: Message, limits: MessageLimits): string | undefined {
  const snapshot = m.snapshot;
  if (typeof snapshot !== 'object' || snapshot === null) return 'snap without its snapshot';
  if (!isReplicaId(snapshot.index)) return `snap of index ${String(snapshot.index)}`;
  if (!isReplicaId(snapshot.term) || snapshot.term > m.term)
    return `snap of term ${String(snapshot.term)} in term ${m.term}`;
  const problem = confProblem(() => snapshot.conf, limits);
  return problem === undefined ? undefined : `snap whose ${problem}`;
}

/** A configuration: lists of distinct replica ids, within the limit. */
function confProblem(read: () => unknown, limits: MessageLimits): string | undefined {
  let conf: { voters?: unknown; learners?: unknown };
  try {
    conf = (read() ?? {}) as typeof conf;
  } catch {
    return 'configuration does not decode';
  }
  const { voters, learners } = conf;
  if (!Array.isArray(voters) || !Array.isArray(learners)) return 'configuration is not lists';
  const members = [...voters, ...learners];
  if (members.length > limits.maxMembers) return `configuration of ${members.length} members`;
  if (!members.every(isReplicaId) || new Set(members).size !== members.length)
    return 'configuration names bad replica ids';
  return undefined;
}
