// Client sessions (Ongaro §6.3) in the store: writes apply once however far apart their
// attempts arrive, a session's memory follows the writes still pending, and an expired
// session refuses its writes instead of applying them again.
import { describe, expect, it } from 'vitest';
import { ClientSessions, type SessionLimits } from '../../src/cache/client-sessions.ts';
import {
  type CommandRequest,
  MAX_PENDING_SPAN,
  type Outcome,
  type WriteId,
} from '../../src/cache/commands.ts';
import { prepare } from '../../src/cache/prepare.ts';
import { restoreSnapshot, snapshotChunks } from '../../src/cache/snapshot.ts';
import { CacheStore } from '../../src/cache/store.ts';

const LIMITS: SessionLimits = { maxSessions: 3, maxOutcomes: MAX_PENDING_SPAN, idleMs: 60_000 };
const bytes = (text: string) => new Uint8Array(Buffer.from(text));

/** A store fed its own log, one entry per `propose`, at leader time `at`. */
class Shard {
  store: CacheStore;
  at = 1_000;

  constructor(limits: SessionLimits = LIMITS) {
    this.store = new CacheStore({ capacityBytes: 1 << 24, sessions: limits });
  }

  propose(requests: CommandRequest[]): Outcome[] {
    const prepared = prepare(this.store, requests, this.at);
    const index = this.store.appliedIndex + 1;
    const { outcomes } = this.store.apply(index, prepared.payload);
    return prepared.outcomeIndex.map((i) => outcomes[i] as Outcome);
  }

  open(clientId: string): number {
    const [outcome] = this.propose([{ op: 'open-session', clientId }]);
    if (outcome?.status !== 'applied') throw new Error(`open: ${JSON.stringify(outcome)}`);
    return outcome.count;
  }

  version(key: string): number | undefined {
    return this.store.getEntry(key, this.at)?.version;
  }
}

/** NX: a second application would answer `exists`, so applying twice shows. */
function nx(key: string, writeId: WriteId): CommandRequest {
  return { op: 'set', key, value: bytes(key), condition: 'nx', writeId };
}

describe('client sessions in the store', () => {
  it('applies 2,000 writes of one client in flight together once each, whatever order their attempts arrive in', () => {
    const shard = new Shard();
    const session = shard.open('c');
    const ids = Array.from({ length: 2000 }, (_, i) => ({
      clientId: 'c',
      session,
      seq: i + 1,
      lowestPending: 1,
    }));
    // Every write pending at once: the first attempts arrive newest first, in a few entries.
    const reversed = [...ids].reverse();
    const first: Outcome[] = [];
    for (let i = 0; i < reversed.length; i += 250)
      first.push(...shard.propose(reversed.slice(i, i + 250).map((id) => nx(`k${id.seq}`, id))));
    expect(first.every((o) => o.status === 'applied')).toBe(true);
    // Every write retried, in order now: each answers what it did, none applies again.
    const retried = shard.propose(ids.map((id) => nx(`k${id.seq}`, id)));
    expect(retried).toEqual([...first].reverse());
    for (const id of ids)
      expect(shard.version(`k${id.seq}`)).toBe(
        (retried[id.seq - 1] as { version: number }).version,
      );
    expect(shard.store.stats().keys).toBe(2000);
    expect(shard.store.sessionStats()).toEqual({ sessions: 1, outcomes: 2000 });
  });

  it('keeps the outcomes from the lowest pending seq up: memory follows what is in flight', () => {
    const shard = new Shard();
    const session = shard.open('c');
    // At most 8 pending: each write says the one 7 below it still awaits its reply.
    for (let seq = 1; seq <= 500; seq++) {
      const lowestPending = Math.max(1, seq - 7);
      shard.propose([nx(`k${seq}`, { clientId: 'c', session, seq, lowestPending })]);
      expect(shard.store.sessionStats().outcomes).toBe(seq - lowestPending + 1);
    }
    // A retry of a write the client had its reply of: unknown, not applied again.
    const late = { clientId: 'c', session, seq: 3, lowestPending: 3 };
    expect(shard.propose([nx('k3', late)])).toEqual([{ status: 'unknown' }]);
    // A retry inside the pending ones gets its recorded outcome.
    const [recorded] = shard.propose([nx('k495', { ...late, seq: 495, lowestPending: 493 })]);
    expect(recorded).toEqual({ status: 'applied', version: 496, count: 1 });
  });

  it('refuses a write past the pending span before it is proposed', async () => {
    const { validateCommand, DEFAULT_LIMITS } = await import('../../src/cache/commands.ts');
    const limits = { ...DEFAULT_LIMITS, capacityBytes: 1 << 20 };
    const id = { clientId: 'c', session: 1, seq: MAX_PENDING_SPAN, lowestPending: 1 };
    expect(() => validateCommand(nx('k', id), limits)).not.toThrow();
    expect(() => validateCommand(nx('k', { ...id, seq: MAX_PENDING_SPAN + 1 }), limits)).toThrow(
      /at most 4096 writes pending/,
    );
  });

  it('answers SESSION_EXPIRED to a retry after its session expired, and never applies it twice', () => {
    const shard = new Shard();
    const session = shard.open('c');
    const other = shard.open('d');
    const first = { clientId: 'c', session, seq: 1, lowestPending: 1 };
    // A compare-and-set chain: the retry of step 2 would fail its version check, or move
    // the version again, if it applied twice.
    const [created] = shard.propose([nx('counter', first)]);
    const v1 = (created as { version: number }).version;
    const cas: CommandRequest = {
      op: 'set',
      key: 'counter',
      value: bytes('2'),
      ifVersion: v1,
      writeId: { ...first, seq: 2 },
    };
    const [swapped] = shard.propose([cas]);
    expect(swapped).toMatchObject({ status: 'applied' });
    const v2 = shard.version('counter');
    // The client goes quiet for longer than the idle time; another keeps writing.
    for (const seq of [1, 2]) {
      shard.at += LIMITS.idleMs / 2 + 1;
      const id = { clientId: 'd', session: other, seq, lowestPending: seq };
      expect(shard.propose([nx(`other${seq}`, id)])[0]).toMatchObject({ status: 'applied' });
    }
    expect(shard.store.sessionStats().sessions).toBe(1);
    expect(shard.propose([cas])).toEqual([{ status: 'refused', code: 'SESSION_EXPIRED' }]);
    expect(shard.version('counter')).toBe(v2);
    // A session id is never given again: a new session is a new id, and the old stays gone.
    expect(shard.open('c')).toBeGreaterThan(other);
    expect(shard.propose([cas])).toEqual([{ status: 'refused', code: 'SESSION_EXPIRED' }]);
    // Another client's session is not this client's.
    const foreign = { clientId: 'x', session: other, seq: 3, lowestPending: 3 };
    expect(shard.propose([nx('x', foreign)])).toEqual([
      { status: 'refused', code: 'SESSION_EXPIRED' },
    ]);
  });

  it('frees the memory of a client that crashed mid-write once its session expires', () => {
    const shard = new Shard();
    const crashed = shard.open('crashed');
    // 100 writes sent, the last 50 never answered: the client died before hearing.
    for (let seq = 1; seq <= 100; seq++)
      shard.propose([
        nx(`c${seq}`, { clientId: 'crashed', session: crashed, seq, lowestPending: 51 }),
      ]);
    expect(shard.store.sessionStats()).toEqual({ sessions: 1, outcomes: 50 });
    const alive = shard.open('alive');
    for (let step = 1; step <= 10; step++) {
      shard.at += LIMITS.idleMs / 5;
      shard.propose([
        nx(`a${step}`, { clientId: 'alive', session: alive, seq: step, lowestPending: step }),
      ]);
    }
    expect(shard.store.sessionStats()).toEqual({ sessions: 1, outcomes: 1 });
  });

  it('expires the least recently active session beyond the session and outcome limits', () => {
    const shard = new Shard();
    const [a, b, c] = [shard.open('a'), shard.open('b'), shard.open('c')];
    shard.propose([nx('ka', { clientId: 'a', session: a, seq: 1, lowestPending: 1 })]);
    shard.open('d'); // b is now the least recently active
    expect(
      shard.propose([nx('kb', { clientId: 'b', session: b, seq: 1, lowestPending: 1 })]),
    ).toEqual([{ status: 'refused', code: 'SESSION_EXPIRED' }]);
    expect(
      shard.propose([nx('kc', { clientId: 'c', session: c, seq: 1, lowestPending: 1 })])[0],
    ).toMatchObject({
      status: 'applied',
    });
    // Outcomes: a session that fills the budget pushes out the others, never itself.
    const big = new Shard({ maxSessions: 10, maxOutcomes: MAX_PENDING_SPAN, idleMs: 60_000 });
    const small = big.open('small');
    big.propose([nx('s', { clientId: 'small', session: small, seq: 1, lowestPending: 1 })]);
    const busy = big.open('busy');
    const writes = Array.from({ length: MAX_PENDING_SPAN }, (_, i) =>
      nx(`b${i}`, { clientId: 'busy', session: busy, seq: i + 1, lowestPending: 1 }),
    );
    expect(big.propose(writes).every((o) => o.status === 'applied')).toBe(true);
    expect(big.store.sessionStats()).toEqual({ sessions: 1, outcomes: MAX_PENDING_SPAN });
  });

  it('travels in snapshots: a retry after a restore gets its recorded outcome, an expired session stays expired', () => {
    const shard = new Shard();
    const session = shard.open('c');
    const id = { clientId: 'c', session, seq: 1, lowestPending: 1 };
    const [applied] = shard.propose([nx('k', id)]);
    const restored = restoreSnapshot(snapshotChunks(shard.store), { sessions: LIMITS });
    expect(restored.digest()).toBe(shard.store.digest());
    shard.store = restored;
    expect(shard.propose([nx('k', id)])).toEqual([applied]);
    shard.at += LIMITS.idleMs + 1;
    shard.open('other');
    shard.store = restoreSnapshot(snapshotChunks(shard.store), { sessions: LIMITS });
    expect(shard.propose([nx('k', id)])).toEqual([{ status: 'refused', code: 'SESSION_EXPIRED' }]);
    // Session ids continue after a restore: the expired one is not given again.
    expect(shard.open('c')).toBe(session + 2);
  });
});

describe('ClientSessions', () => {
  it('round-trips through export and import, and refuses malformed tables', () => {
    const sessions = new ClientSessions(LIMITS);
    const id = sessions.open('c');
    sessions.advance(10);
    const writeId = { clientId: 'c', session: id, seq: 2, lowestPending: 2 };
    expect(sessions.admit(writeId)).toBeUndefined();
    sessions.record(writeId, { status: 'not-applied', reason: 'exists' });
    const exported = sessions.export();
    const copy = new ClientSessions(LIMITS);
    expect(copy.import(exported.clock, exported.lastId, exported.sessions)).toBe(true);
    expect(copy.export()).toEqual(exported);
    expect(copy.admit(writeId)).toEqual({ status: 'not-applied', reason: 'exists' });
    const bad = (sessionsField: unknown, lastId: unknown = exported.lastId) =>
      new ClientSessions(LIMITS).import(exported.clock, lastId, sessionsField);
    expect(bad(exported.sessions, 0)).toBe(false); // an id above the last one given
    expect(bad([[1, '', 10, 2, [], []]])).toBe(false);
    expect(bad([[1, 'c', 10, 2, [1], [[0, 5, 1]]]])).toBe(false); // an outcome below lowest
    expect(bad([[1, 'c', 10, 2, [2], [[9]]]])).toBe(false);
    expect(bad([...exported.sessions, ...exported.sessions])).toBe(false);
    expect(bad({})).toBe(false);
  });
});
