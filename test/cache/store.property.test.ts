// Model-based tests: random sequences of client writes (in sessions that open, expire and
// reopen, or without a write id), retries and late duplicates of any earlier write, writes
// arriving in reverse order, reads, clock moves, expiry cycles, snapshots (also while writes
// apply) and leader changes, run against a leader and a follower store fed the same log, and
// checked against the plain model in model.ts. The property: every outcome is the model's,
// each write id applies at most once, and the replicas agree (digests, sessions included).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LruPolicy } from '../../plugins/lru/index.ts';
import { expiryCycle } from '../../src/cache/active-expiry.ts';
import { encodeEntry } from '../../src/cache/codec.ts';
import {
  type Command,
  type CommandLimits,
  type CommandRequest,
  DEFAULT_LIMITS,
  NO_WRITE_ID,
  type Outcome,
  validateCommand,
} from '../../src/cache/commands.ts';
import { CacheError } from '../../src/cache/errors.ts';
import { prepare, toCommand } from '../../src/cache/prepare.ts';
import {
  beginSnapshot,
  readSnapshot,
  restoreSnapshot,
  snapshotChunks,
} from '../../src/cache/snapshot.ts';
import { CacheStore } from '../../src/cache/store.ts';
import { CacheModel } from './model.ts';

const CAPACITY = 800;
/** Few sessions and a short idle time, so that sessions expire and are pushed out often. */
const SESSIONS = { maxSessions: 3, maxOutcomes: 4096, idleMs: 20_000 };
/** Small value pages, so that page reclaiming runs often. */
const PAGE_BYTES = 64;
const storeOptions = { sessions: SESSIONS, valuePageBytes: PAGE_BYTES };
const limits: CommandLimits = { ...DEFAULT_LIMITS, capacityBytes: CAPACITY };

interface Replicas {
  leader: CacheStore;
  follower: CacheStore;
  /** Write ids that applied, as the stores said. */
  applied: Set<string>;
}

type Request = Exclude<CommandRequest, { op: 'open-session' }>;
/** A request, and who sends it: a client of a session, lagging its lowest pending seq, or none. */
interface RequestShape {
  request: Request;
  clientId: string | null;
  lag: number;
}

function newStore() {
  return new CacheStore({ capacityBytes: CAPACITY, ...storeOptions, policy: new LruPolicy() });
}

/** Feeds one entry to both replicas and the model; checks outcomes and the memory bound. */
function commit(
  model: CacheModel,
  real: Replicas,
  at: number,
  commands: Command[],
  payload: Uint8Array,
): Outcome[] {
  const expected = model.applyEntry(at, commands);
  const index = model.index;
  const fromLeader = real.leader.apply(index, payload);
  const fromFollower = real.follower.apply(index, payload);
  expect(fromLeader.outcomes).toEqual(expected);
  expect(fromFollower.outcomes).toEqual(expected);
  // At most once: a write id takes effect in one entry; any other answers from its record.
  commands.forEach((command, i) => {
    const outcome = fromLeader.outcomes[i];
    if (command.op === 'open-session' || command.session === 0 || outcome === undefined) return;
    if (outcome.status === 'applied' && outcome.version === index) {
      const id = `${command.session}#${command.seq}`;
      expect(real.applied.has(id)).toBe(false);
      real.applied.add(id);
    }
  });
  // Memory follows what is in flight: the outcomes at or above each lowest pending seq.
  for (const store of [real.leader, real.follower])
    expect(store.sessionStats()).toEqual({
      sessions: model.sessions.size,
      outcomes: model.heldOutcomes(),
    });
  // Pages hold at most twice the small values plus 1.5 pages, and the big values exactly.
  let pageBound = 1.5 * PAGE_BYTES;
  for (const entry of model.entries.values()) {
    const length = entry.value.byteLength;
    pageBound += length > PAGE_BYTES / 4 ? length : 2 * length;
  }
  for (const store of [real.leader, real.follower]) {
    const stats = store.stats();
    expect(stats.bytes).toBe(model.bytes());
    expect(stats.bytes).toBeLessThanOrEqual(CAPACITY);
    expect(stats.valuePageBytes).toBeLessThanOrEqual(pageBound);
  }
  // Reads, retries, leader changes and snapshot restores in between: the replicas still agree.
  expect(real.follower.digest()).toBe(real.leader.digest());
  return fromLeader.outcomes;
}

function proposeRequest(
  model: CacheModel,
  real: Replicas,
  request: CommandRequest,
): Outcome | CacheError {
  try {
    validateCommand(request, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(CacheError);
    return error as CacheError;
  }
  const prepared = prepare(real.leader, [request], model.now);
  const writtenKeys = new Set(prepared.commands.filter((c) => c.op !== 'evict').flatMap(keysOf));
  for (const command of prepared.commands) {
    if (command.op === 'evict') expect(writtenKeys.has(command.key)).toBe(false);
  }
  const outcomes = commit(model, real, model.now, prepared.commands, prepared.payload);
  return outcomes[prepared.outcomeIndex[0]];
}

function keysOf(command: Command): string[] {
  if (command.op === 'open-session') return [];
  return command.op === 'del' || command.op === 'mset' ? command.keys : [command.key];
}

/**
 * The request of `shape` with its write id, opening a session for its client first when it
 * has none (as the SDK does on its first write to a shard).
 */
function identified(model: CacheModel, real: Replicas, shape: RequestShape): Request {
  const { request, clientId, lag } = shape;
  if (clientId === null) return request;
  if (!model.clientSessions.has(clientId)) {
    const opened = proposeRequest(model, real, { op: 'open-session', clientId });
    if (opened instanceof CacheError || opened.status !== 'applied')
      throw new Error(`open-session: ${JSON.stringify(opened)}`);
    model.clientSessions.set(clientId, opened.count);
  }
  const writeId = model.nextWriteId(clientId, lag);
  return writeId === undefined ? request : { ...request, writeId };
}

/** After an outcome: a client told its session expired opens a new one next time. */
function noteOutcome(model: CacheModel, request: Request, outcome: Outcome | CacheError): void {
  if (request.writeId === undefined || outcome instanceof CacheError) return;
  if (outcome.status === 'refused' && outcome.code === 'SESSION_EXPIRED')
    model.clientSessions.delete(request.writeId.clientId);
  else model.history.push(request);
}

class Write implements fc.Command<CacheModel, Replicas> {
  readonly shape: RequestShape;
  constructor(shape: RequestShape) {
    this.shape = shape;
  }
  check = () => true;
  run(model: CacheModel, real: Replicas): void {
    const request = identified(model, real, this.shape);
    const result = proposeRequest(model, real, request);
    noteOutcome(model, request, result);
    // prepare planned against the current state with nothing in flight: the room was made.
    expect(result).not.toEqual({ status: 'refused', code: 'OVER_CAPACITY' });
  }
  toString = () =>
    `Write(${JSON.stringify(this.shape, (_k, v) => (v instanceof Uint8Array ? v.length : v))})`;
}

/** A write proposed without an eviction plan (as when another entry in flight took the room). */
class UnplannedWrite implements fc.Command<CacheModel, Replicas> {
  readonly shape: RequestShape;
  constructor(shape: RequestShape) {
    this.shape = shape;
  }
  check = () => true;
  run(model: CacheModel, real: Replicas): void {
    const request = identified(model, real, this.shape);
    try {
      validateCommand(request, limits);
    } catch {
      return;
    }
    const command = toCommand(request, model.now);
    const entry = encodeEntry({ at: model.now, commands: [command] });
    const [outcome] = commit(model, real, model.now, [command], entry);
    if (outcome !== undefined) noteOutcome(model, request, outcome);
  }
  toString = () =>
    `UnplannedWrite(${JSON.stringify(this.shape, (_k, v) => (v instanceof Uint8Array ? v.length : v))})`;
}

/**
 * A retry, or a late duplicate, of any earlier write with a write id: it must not apply
 * again, whether its outcome is still held, its seq fell below the lowest pending one, or its
 * session expired.
 */
class Retry implements fc.Command<CacheModel, Replicas> {
  readonly pick: number;
  readonly recent: boolean;
  constructor(pick: number, recent: boolean) {
    this.pick = pick;
    this.recent = recent;
  }
  check = (model: Readonly<CacheModel>) => model.history.length > 0;
  run(model: CacheModel, real: Replicas): void {
    const candidates = this.recent ? model.history.slice(-4) : model.history;
    const request = candidates[this.pick % candidates.length] as Request;
    const before = readSnapshot(snapshotChunks(real.leader)).entries;
    const outcome = proposeRequest(model, real, request);
    if (!(outcome instanceof CacheError) && outcome.status === 'applied')
      expect(outcome.version).toBeLessThan(model.index);
    // Evictions may have run in the same entry, but the retried command changed nothing.
    const after = readSnapshot(snapshotChunks(real.leader)).entries;
    for (const entry of after) expect(before).toContainEqual(entry);
  }
  toString = () => `Retry(${this.pick}, ${this.recent ? 'recent' : 'any'})`;
}

/**
 * Writes of one client sent in the reverse of their order, all pending at once (the oldest
 * pending is the first), as when the first attempts arrive after the later ones: each still
 * applies once.
 */
class Reordered implements fc.Command<CacheModel, Replicas> {
  readonly shapes: RequestShape[];
  constructor(shapes: RequestShape[]) {
    this.shapes = shapes;
  }
  check = () => true;
  run(model: CacheModel, real: Replicas): void {
    const requests: Request[] = [];
    let lowest = 0;
    for (const shape of this.shapes) {
      const request = identified(model, real, { ...shape, clientId: 'c1', lag: 0 });
      if (request.writeId === undefined) return;
      lowest ||= request.writeId.seq;
      requests.push({ ...request, writeId: { ...request.writeId, lowestPending: lowest } });
    }
    for (const request of requests.reverse()) {
      const outcome = proposeRequest(model, real, request);
      noteOutcome(model, request, outcome);
      if (!(outcome instanceof CacheError)) expect(outcome.status).not.toBe('unknown');
    }
  }
  toString = () => `Reordered(${this.shapes.length} writes)`;
}

class Read implements fc.Command<CacheModel, Replicas> {
  readonly key: string;
  constructor(key: string) {
    this.key = key;
  }
  check = () => true;
  run(model: CacheModel, real: Replicas): void {
    const expected = model.isLive(this.key, model.now)
      ? model.entries.get(this.key)?.value
      : undefined;
    for (const store of [real.leader, real.follower]) {
      const got = store.get(this.key, model.now);
      expect(got === undefined ? undefined : Buffer.from(got)).toEqual(
        expected === undefined ? undefined : Buffer.from(expected),
      );
      const ttl = store.ttl(this.key, model.now);
      const entry = model.entries.get(this.key);
      expect(ttl).toBe(
        expected === undefined
          ? -2
          : entry?.expiresAt === 0
            ? -1
            : (entry?.expiresAt as number) - model.now,
      );
    }
  }
  toString = () => `Read(${this.key})`;
}

class Tick implements fc.Command<CacheModel, Replicas> {
  readonly ms: number;
  constructor(ms: number) {
    this.ms = ms;
  }
  check = () => true;
  run(model: CacheModel): void {
    model.now += this.ms;
  }
  toString = () => `Tick(${this.ms})`;
}

class ActiveExpiry implements fc.Command<CacheModel, Replicas> {
  readonly seed: number;
  constructor(seed: number) {
    this.seed = seed;
  }
  check = () => true;
  run(model: CacheModel, real: Replicas): void {
    const random = fc.sample(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
      seed: this.seed,
      numRuns: 200,
    });
    let i = 0;
    const deletes = expiryCycle(real.leader.entries, {
      now: model.now,
      random: () => random[i++ % random.length],
      elapsed: () => 0,
    });
    for (const command of deletes) expect(model.isLive(command.key, model.now)).toBe(false);
    if (deletes.length === 0) return;
    commit(model, real, model.now, deletes, encodeEntry({ at: model.now, commands: deletes }));
  }
  toString = () => `ActiveExpiry(${this.seed})`;
}

/** An eviction naming some version: it removes the key only if the version is current. */
class StaleEvict implements fc.Command<CacheModel, Replicas> {
  readonly key: string;
  readonly version: number;
  constructor(key: string, version: number) {
    this.key = key;
    this.version = version;
  }
  check = () => true;
  run(model: CacheModel, real: Replicas): void {
    const command: Command = { op: 'evict', ...NO_WRITE_ID, key: this.key, version: this.version };
    commit(model, real, model.now, [command], encodeEntry({ at: model.now, commands: [command] }));
  }
  toString = () => `StaleEvict(${this.key}, ${this.version})`;
}

/** Snapshot of leader and follower agree with the model; the follower is replaced by a restore. */
class Snapshot implements fc.Command<CacheModel, Replicas> {
  check = () => true;
  run(model: CacheModel, real: Replicas): void {
    const leaderChunks = snapshotChunks(real.leader, 200);
    const fromLeader = readSnapshot(leaderChunks);
    expect(readSnapshot(snapshotChunks(real.follower))).toEqual(fromLeader);
    expect(fromLeader.entries).toEqual(model.snapshotEntries());
    expect(fromLeader).toMatchObject({
      index: model.index,
      evictions: model.evictions,
      expirations: model.expirations,
    });
    real.follower = restoreSnapshot(leaderChunks, { ...storeOptions, policy: new LruPolicy() });
    expect(readSnapshot(snapshotChunks(real.follower))).toEqual(fromLeader);
  }
  toString = () => 'Snapshot';
}

/** A snapshot stays the state at its index while later entries apply during the stream. */
class SnapshotDuringWrites implements fc.Command<CacheModel, Replicas> {
  readonly chunksBefore: number;
  readonly writes: RequestShape[];
  constructor(chunksBefore: number, writes: RequestShape[]) {
    this.chunksBefore = chunksBefore;
    this.writes = writes;
  }
  check = () => true;
  run(model: CacheModel, real: Replicas): void {
    const expected = model.snapshotEntries();
    const stream = beginSnapshot(real.leader, 100);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < this.chunksBefore; i++) {
      const chunk = stream.next();
      if (chunk !== null) chunks.push(chunk);
    }
    for (const shape of this.writes) new Write(shape).run(model, real);
    for (let chunk = stream.next(); chunk !== null; chunk = stream.next()) chunks.push(chunk);
    expect(readSnapshot(chunks).entries).toEqual(expected);
  }
  toString = () => `SnapshotDuringWrites(${this.chunksBefore}, ${this.writes.length} writes)`;
}

class LeaderChange implements fc.Command<CacheModel, Replicas> {
  check = () => true;
  run(_model: CacheModel, real: Replicas): void {
    [real.leader, real.follower] = [real.follower, real.leader];
    real.leader.onBecomeLeader();
  }
  toString = () => 'LeaderChange';
}

const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'é');
const value = fc.uint8Array({ maxLength: 120 }).map((bytes) => Buffer.from(bytes));
const clientId = fc.constantFrom('c1', 'c2', 'c3', 'c4');
const ttl = fc.integer({ min: 1, max: 5000 });

const request: fc.Arbitrary<Request> = fc.oneof(
  fc
    .record({
      key,
      value: fc.oneof(
        { weight: 9, arbitrary: value },
        { weight: 1, arbitrary: fc.constantFrom(Buffer.alloc(500), Buffer.alloc(700)) },
      ),
      ttlOption: fc.constantFrom('none', 'px', 'ex', 'keepTtl'),
      ttl,
      condition: fc.constantFrom('none', 'nx', 'xx', undefined),
      ifVersion: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
    })
    .map(({ ttlOption, ttl, condition, ifVersion, ...rest }) => ({
      op: 'set' as const,
      ...rest,
      ...(ttlOption === 'px'
        ? { px: ttl }
        : ttlOption === 'ex'
          ? { ex: Math.ceil(ttl / 1000) }
          : {}),
      ...(ttlOption === 'keepTtl' ? { keepTtl: true } : {}),
      condition,
      ifVersion: condition === 'nx' ? undefined : ifVersion,
    })),
  fc.record({
    op: fc.constant('del' as const),
    keys: fc.uniqueArray(key, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({
    op: fc.constant('mset' as const),
    entries: fc.uniqueArray(fc.record({ key, value }), {
      minLength: 1,
      maxLength: 3,
      selector: (e) => e.key,
    }),
    px: fc.option(ttl, { nil: undefined }),
  }),
  fc.record({
    op: fc.constant('expire' as const),
    key,
    ttlMs: fc.option(fc.integer({ min: -100, max: 5000 }), { nil: null }),
  }),
);

const requestShape: fc.Arbitrary<RequestShape> = fc.record({
  request,
  clientId: fc.oneof(
    { weight: 6, arbitrary: clientId },
    { weight: 1, arbitrary: fc.constant(null) },
  ),
  lag: fc.nat({ max: 6 }),
});

const commands = fc.commands(
  [
    requestShape.map((shape) => new Write(shape)),
    requestShape.map((shape) => new UnplannedWrite(shape)),
    fc.tuple(fc.nat(), fc.boolean()).map(([pick, recent]) => new Retry(pick, recent)),
    fc.array(requestShape, { minLength: 2, maxLength: 40 }).map((shapes) => new Reordered(shapes)),
    key.map((k) => new Read(k)),
    fc.integer({ min: 1, max: 3000 }).map((ms) => new Tick(ms)),
    fc.constant(new Tick(SESSIONS.idleMs + 1)),
    fc.integer().map((seed) => new ActiveExpiry(seed)),
    fc.tuple(key, fc.integer({ min: 1, max: 60 })).map(([k, v]) => new StaleEvict(k, v)),
    fc.constant(new Snapshot()),
    fc
      .tuple(fc.nat({ max: 4 }), fc.array(requestShape, { minLength: 1, maxLength: 6 }))
      .map(([before, writes]) => new SnapshotDuringWrites(before, writes)),
    fc.constant(new LeaderChange()),
  ],
  { maxCommands: 80, size: 'max' },
);

describe('cache store against its model', () => {
  it('gives the model outcomes, stays within capacity, and keeps replicas and snapshots equal', () => {
    fc.assert(
      fc.property(commands, (cmds) => {
        fc.modelRun(
          () => ({
            model: new CacheModel(CAPACITY, SESSIONS),
            real: { leader: newStore(), follower: newStore(), applied: new Set<string>() },
          }),
          cmds,
        );
      }),
      { numRuns: 150 },
    );
  });
});
