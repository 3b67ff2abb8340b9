// Client sessions (Ongaro's thesis, §6.3): what makes a retried write apply at most once.
// Replicated state (it decides whether a command applies), so it changes only by applying
// the log, and its clock is the leader's `at` from the entries, never a local clock.
//
// A client opens a session on a shard through the log; its id is the next of a replicated
// counter, so an id is never given twice, and a session the shard no longer holds is known
// to be gone: a write naming it is refused as SESSION_EXPIRED (it did not apply),
// never applied as if new. Each write names its session, its sequence number and the lowest
// sequence number of that session still awaiting its reply; the outcomes below that one are
// dropped (the client has their replies), so what a session holds follows what is really in
// flight: at most MAX_PENDING_SPAN outcomes, since a write more than that past its lowest
// pending one is refused before it is proposed. A session unused for `idleMs` of leader time
// expires, and so does the least recently active one beyond `maxSessions` sessions or
// `maxOutcomes` outcomes in all: memory is bounded whatever clients do.
import type { NotAppliedReason, Outcome, RefusalCode, WriteId } from './commands.ts';
import { MAX_PENDING_SPAN } from './commands.ts';

export interface SessionLimits {
  /** Sessions a shard holds at most; beyond, the least recently active one expires. */
  maxSessions: number;
  /** Recorded outcomes a shard holds at most, over all its sessions (at least MAX_PENDING_SPAN). */
  maxOutcomes: number;
  /** A session that no write named for this long (leader time) expires. */
  idleMs: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxSessions: 4096,
  maxOutcomes: 65_536,
  idleMs: 10 * 60 * 1000,
};

const UNKNOWN: Outcome = Object.freeze({ status: 'unknown' });
const SESSION_EXPIRED: Outcome = Object.freeze({ status: 'refused', code: 'SESSION_EXPIRED' });

interface Session {
  readonly clientId: string;
  lastAt: number;
  /** The lowest seq still awaiting its reply, as the client last said: none below is kept. */
  lowest: number;
  readonly outcomes: Map<number, Outcome>;
}

/** [session id, clientId, lastAt, lowest, seqs, outcomes], the form a snapshot carries. */
export type SessionTuple = [number, string, number, number, number[], unknown[]];

export interface SessionsExport {
  clock: number;
  /** The id of the last session opened. */
  lastId: number;
  /** Least recently active first. */
  sessions: SessionTuple[];
}

export class ClientSessions {
  readonly #limits: SessionLimits;
  /** By id, in order of last activity, least recent first (Map keeps insertion order). */
  #sessions = new Map<number, Session>();
  #outcomeCount = 0;
  #clock = 0;
  #lastId = 0;

  constructor(limits: SessionLimits = DEFAULT_SESSION_LIMITS) {
    if (limits.maxOutcomes < MAX_PENDING_SPAN)
      throw new RangeError(`maxOutcomes must be at least ${MAX_PENDING_SPAN}`);
    this.#limits = limits;
  }

  /** Sessions held. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Outcomes held, over all sessions. */
  get outcomeCount(): number {
    return this.#outcomeCount;
  }

  /** Moves the clock to the entry's leader time (never backwards) and expires idle sessions. */
  advance(at: number): void {
    if (at > this.#clock) this.#clock = at;
    const horizon = this.#clock - this.#limits.idleMs;
    for (const [id, session] of this.#sessions) {
      if (session.lastAt >= horizon) break;
      this.#drop(id, session);
    }
  }

  /** Opens a session for `clientId`; returns its id. */
  open(clientId: string): number {
    const id = ++this.#lastId;
    this.#sessions.set(id, { clientId, lastAt: this.#clock, lowest: 1, outcomes: new Map() });
    this.#bound();
    return id;
  }

  /**
   * What a write gets instead of applying: SESSION_EXPIRED when its session is not held (or
   * is another client's), its recorded outcome when it is a retry, `unknown` when its seq is
   * below the lowest pending one (the client already had its reply; it may have applied).
   * Undefined when it must apply, then `record` its outcome. Marks the session active and
   * drops the outcomes the write says were answered.
   */
  admit(id: WriteId): Outcome | undefined {
    const session = this.#sessions.get(id.session);
    if (session === undefined || session.clientId !== id.clientId) return SESSION_EXPIRED;
    this.#touch(id.session, session);
    if (id.lowestPending > session.lowest) this.#raiseLowest(session, id.lowestPending);
    if (id.seq < session.lowest) return UNKNOWN;
    return session.outcomes.get(id.seq);
  }

  /** Records the outcome of a write `admit` let through (in the same entry). */
  record(id: WriteId, outcome: Outcome): void {
    const session = this.#sessions.get(id.session);
    if (session === undefined) return;
    session.outcomes.set(id.seq, outcome);
    this.#outcomeCount++;
    this.#bound();
  }

  export(): SessionsExport {
    const sessions: SessionTuple[] = [];
    for (const [id, session] of this.#sessions) {
      sessions.push([
        id,
        session.clientId,
        session.lastAt,
        session.lowest,
        [...session.outcomes.keys()],
        [...session.outcomes.values()].map(outcomeToTuple),
      ]);
    }
    return { clock: this.#clock, lastId: this.#lastId, sessions };
  }

  /** Replaces the content with an exported one; false if it is malformed. */
  import(clock: unknown, lastId: unknown, sessions: unknown): boolean {
    if (!isCount(clock) || !isCount(lastId) || !Array.isArray(sessions)) return false;
    const restored = new Map<number, Session>();
    let outcomeCount = 0;
    for (const tuple of sessions) {
      const session = tupleToSession(tuple);
      if (session === null || session.id > lastId || restored.has(session.id)) return false;
      restored.set(session.id, session.session);
      outcomeCount += session.session.outcomes.size;
    }
    this.#clock = clock;
    this.#lastId = lastId;
    this.#sessions = restored;
    this.#outcomeCount = outcomeCount;
    return true;
  }

  #touch(id: number, session: Session): void {
    // To the back of the activity order: the session being used is the last to expire.
    this.#sessions.delete(id);
    this.#sessions.set(id, session);
    session.lastAt = this.#clock;
  }

  #raiseLowest(session: Session, lowest: number): void {
    const { outcomes } = session;
    // Visit whichever is fewer: the seqs passed over, or the outcomes held.
    if (lowest - session.lowest <= outcomes.size) {
      for (let seq = session.lowest; seq < lowest; seq++)
        if (outcomes.delete(seq)) this.#outcomeCount--;
    } else {
      for (const seq of outcomes.keys())
        if (seq < lowest) {
          outcomes.delete(seq);
          this.#outcomeCount--;
        }
    }
    session.lowest = lowest;
  }

  /** Expires the least recently active sessions while over a limit. */
  #bound(): void {
    const { maxSessions, maxOutcomes } = this.#limits;
    for (const [id, session] of this.#sessions) {
      if (this.#sessions.size <= maxSessions && this.#outcomeCount <= maxOutcomes) return;
      this.#drop(id, session);
    }
  }

  #drop(id: number, session: Session): void {
    this.#sessions.delete(id);
    this.#outcomeCount -= session.outcomes.size;
  }
}

const NOT_APPLIED_REASONS: readonly unknown[] = [
  'exists',
  'missing',
  'version-mismatch',
] satisfies NotAppliedReason[];
const REFUSAL_CODES: readonly unknown[] = [
  'OVER_CAPACITY',
  'MALFORMED_COMMAND',
  'UNSUPPORTED_FORMAT',
  'SESSION_EXPIRED',
] satisfies RefusalCode[];

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function tupleToSession(tuple: unknown): { id: number; session: Session } | null {
  if (!Array.isArray(tuple) || tuple.length !== 6) return null;
  const [id, clientId, lastAt, lowest, seqs, outcomes] = tuple as unknown[];
  if (!isCount(id) || id < 1 || typeof clientId !== 'string' || clientId === '') return null;
  if (!isCount(lastAt) || !isCount(lowest) || lowest < 1) return null;
  if (!Array.isArray(seqs) || !Array.isArray(outcomes) || seqs.length !== outcomes.length)
    return null;
  if (seqs.length > MAX_PENDING_SPAN) return null;
  const map = new Map<number, Outcome>();
  for (let i = 0; i < seqs.length; i++) {
    const seq: unknown = seqs[i];
    const outcome = tupleToOutcome(outcomes[i]);
    if (outcome === null || !isCount(seq) || seq < lowest || map.has(seq)) return null;
    map.set(seq, outcome);
  }
  return { id, session: { clientId, lastAt, lowest, outcomes: map } };
}

function outcomeToTuple(outcome: Outcome): unknown[] {
  switch (outcome.status) {
    case 'applied':
      return [0, outcome.version, outcome.count];
    case 'not-applied':
      return [1, outcome.reason];
    case 'refused':
      return [2, outcome.code];
    case 'unknown':
      return [3];
  }
}

function tupleToOutcome(tuple: unknown): Outcome | null {
  if (!Array.isArray(tuple)) return null;
  const [kind, a, b] = tuple as unknown[];
  if (kind === 0 && isCount(a) && isCount(b)) return { status: 'applied', version: a, count: b };
  if (kind === 1 && NOT_APPLIED_REASONS.includes(a))
    return { status: 'not-applied', reason: a as NotAppliedReason };
  if (kind === 2 && REFUSAL_CODES.includes(a)) return { status: 'refused', code: a as RefusalCode };
  if (kind === 3) return UNKNOWN;
  return null;
}
