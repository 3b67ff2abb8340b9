// Deduplication of retried commands: per client, the outcomes of its recent sequence numbers.
// Replicated state (it decides whether a command applies), so it changes only by applying
// the log and its clock is the leader's `at` from the entries, never a local clock.
//
// Per client it keeps a window of the last `window` sequence numbers (a command may be
// retried after later ones of the same client applied, so "highest seq" alone is not
// enough). A seq inside the window either has its recorded outcome or has not applied yet;
// a seq below the window is reported as unknown rather than risk applying twice. Clients
// idle for `idleMs` (leader time) or beyond `maxClients` (least recently active first) are
// forgotten, which bounds memory at maxClients x window outcomes.
import type { NotAppliedReason, Outcome, RefusalCode } from './commands.ts';

export interface SessionLimits {
  maxClients: number;
  window: number;
  idleMs: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxClients: 4096,
  window: 32,
  idleMs: 10 * 60 * 1000,
};

const UNKNOWN: Outcome = Object.freeze({ status: 'unknown' });

interface ClientRecord {
  maxSeq: number;
  lastAt: number;
  outcomes: Map<number, Outcome>;
  /**
   * Whether `outcomes` holds its seqs in increasing insertion order (a client that never
   * sent out of order): the seqs below the window are then a prefix, and trimming stops at
   * the first one inside it instead of visiting the whole window on every write.
   */
  ascending: boolean;
}

/** [clientId, maxSeq, lastAt, seqs, outcomes], the form a snapshot carries. */
export type ClientRecordTuple = [string, number, number, number[], unknown[]];

export class ClientSessions {
  #limits: SessionLimits;
  /** In order of last activity, least recent first (Map keeps insertion order). */
  #clients = new Map<string, ClientRecord>();
  #clock = 0;

  constructor(limits: SessionLimits = DEFAULT_SESSION_LIMITS) {
    this.#limits = limits;
  }

  get size(): number {
    return this.#clients.size;
  }

  /** Moves the clock to the entry's leader time (never backwards) and forgets idle clients. */
  advance(at: number): void {
    if (at > this.#clock) this.#clock = at;
    const horizon = this.#clock - this.#limits.idleMs;
    for (const [clientId, record] of this.#clients) {
      if (record.lastAt >= horizon) break;
      this.#clients.delete(clientId);
    }
  }

  /** The recorded outcome of a retry, or undefined when the command has to be applied. */
  recall(clientId: string, seq: number): Outcome | undefined {
    const record = this.#clients.get(clientId);
    if (record === undefined || seq > record.maxSeq) return undefined;
    const recorded = record.outcomes.get(seq);
    if (recorded !== undefined) return recorded;
    return seq <= record.maxSeq - this.#limits.window ? UNKNOWN : undefined;
  }

  record(clientId: string, seq: number, outcome: Outcome): void {
    let record = this.#clients.get(clientId);
    if (record === undefined) {
      record = { maxSeq: seq, lastAt: this.#clock, outcomes: new Map(), ascending: true };
      this.#clients.set(clientId, record);
    } else if (record.lastAt !== this.#clock) {
      // Move to the back of the activity order. Clients active at the same clock keep their
      // relative order: it only has to be the same on every replica, and it is.
      this.#clients.delete(clientId);
      this.#clients.set(clientId, record);
      record.lastAt = this.#clock;
    }
    if (record.outcomes.size > 0 && seq <= record.maxSeq) record.ascending = false;
    record.outcomes.set(seq, outcome);
    if (seq > record.maxSeq) record.maxSeq = seq;
    if (record.outcomes.size > this.#limits.window) {
      const floor = record.maxSeq - this.#limits.window;
      for (const old of record.outcomes.keys()) {
        if (old <= floor) record.outcomes.delete(old);
        else if (record.ascending) break;
      }
    }
    if (this.#clients.size > this.#limits.maxClients) {
      const oldest = this.#clients.keys().next().value as string;
      this.#clients.delete(oldest);
    }
  }

  export(): { clock: number; clients: ClientRecordTuple[] } {
    const clients: ClientRecordTuple[] = [];
    for (const [clientId, record] of this.#clients) {
      clients.push([
        clientId,
        record.maxSeq,
        record.lastAt,
        [...record.outcomes.keys()],
        [...record.outcomes.values()].map(outcomeToTuple),
      ]);
    }
    return { clock: this.#clock, clients };
  }

  /** Replaces the content with an exported one; false if it is malformed. */
  import(clock: unknown, clients: unknown): boolean {
    if (!Number.isSafeInteger(clock) || !Array.isArray(clients)) return false;
    const restored = new Map<string, ClientRecord>();
    for (const tuple of clients) {
      if (!Array.isArray(tuple) || tuple.length !== 5) return false;
      const [clientId, maxSeq, lastAt, seqs, outcomes] = tuple;
      if (
        typeof clientId !== 'string' ||
        !Number.isSafeInteger(maxSeq) ||
        !Number.isSafeInteger(lastAt)
      )
        return false;
      if (!Array.isArray(seqs) || !Array.isArray(outcomes) || seqs.length !== outcomes.length)
        return false;
      const map = new Map<number, Outcome>();
      let ascending = true;
      for (let i = 0; i < seqs.length; i++) {
        const outcome = tupleToOutcome(outcomes[i]);
        if (outcome === null || !Number.isSafeInteger(seqs[i])) return false;
        if (i > 0 && seqs[i] <= seqs[i - 1]) ascending = false;
        map.set(seqs[i], outcome);
      }
      restored.set(clientId, { maxSeq, lastAt, outcomes: map, ascending });
    }
    this.#clock = clock as number;
    this.#clients = restored;
    return true;
  }
}

const NOT_APPLIED_REASONS: readonly NotAppliedReason[] = ['exists', 'missing', 'version-mismatch'];
const REFUSAL_CODES: readonly RefusalCode[] = [
  'OVER_CAPACITY',
  'MALFORMED_COMMAND',
  'UNSUPPORTED_FORMAT',
];

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
  const [kind, a, b] = tuple;
  if (kind === 0 && Number.isSafeInteger(a) && Number.isSafeInteger(b)) {
    return { status: 'applied', version: a, count: b };
  }
  if (kind === 1 && NOT_APPLIED_REASONS.includes(a)) return { status: 'not-applied', reason: a };
  if (kind === 2 && REFUSAL_CODES.includes(a)) return { status: 'refused', code: a };
  if (kind === 3) return UNKNOWN;
  return null;
}
