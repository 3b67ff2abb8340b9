// The replicated state machine of one shard. `apply` is the only way replicated state
// changes; reads change only replica-local state (lastAccessed, hit/miss counters, the
// policy's order). Every decision apply makes depends on the log alone: the entry's index,
// its commands and the leader's clock `at` written into it, never this replica's clock.

import { invariant } from '../raft/invariant.ts';
import {
  ClientSessions,
  DEFAULT_SESSION_LIMITS,
  type SessionLimits,
  type SessionsExport,
} from './client-sessions.ts';
import { decodeEntry } from './codec.ts';
import type {
  Command,
  ConditionalDeleteCommand,
  ExpireCommand,
  OpenSessionCommand,
  Outcome,
  SetCommand,
} from './commands.ts';
import { entryBytes, NO_EXPIRY } from './commands.ts';
import { type CapturedEntry, type EntryCapture, EntryTable } from './entry-table.ts';
import type { EntryTableView, EvictionPolicy } from './eviction-policy.ts';
import { GuardedPolicy, type PolicyHealth } from './policy-guard.ts';
import { stateDigest } from './state-digest.ts';

export interface CacheStoreOptions {
  /** Bytes the shard may hold (keys + values + per-entry overhead). Same on every replica. */
  capacityBytes: number;
  /**
   * Chooses the victims when the shard is full. The store calls it only through a
   * `GuardedPolicy` (policy-guard.ts): give one to choose its fallback, clock and budget; a
   * bare policy is guarded without a fallback. None: nothing is evicted, and writes that need
   * room are refused as full.
   */
  policy?: EvictionPolicy | undefined;
  sessions?: SessionLimits;
  /** Size of the pages values are stored in (replica-local layout); 1 MiB by default. */
  valuePageBytes?: number;
}

export interface ApplyResult {
  index: number;
  /** One outcome per command of the entry, in order. Empty when the entry was refused whole. */
  outcomes: Outcome[];
  /** Why the whole entry was refused (the same on every replica), if it was. */
  refused?: 'UNSUPPORTED_FORMAT' | 'MALFORMED_COMMAND';
}

export interface EntryInfo {
  value: Uint8Array;
  version: number;
  expiresAt: number;
  createdAt: number;
}

export interface CacheStats {
  /** Entries held, including expired ones the leader has not deleted yet. */
  keys: number;
  bytes: number;
  capacity: number;
  /** Replica-local. */
  hits: number;
  /** Replica-local. */
  misses: number;
  evictions: number;
  expirations: number;
  /** The policy choosing victims now (`none`: nothing is evicted). */
  policy: string;
  /** Replica-local: the configured plugin, its failures, and whether the fallback took over. */
  policyHealth: PolicyHealth;
  /**
   * Replica-local: bytes of the pages that hold the values, dead bytes not yet reclaimed
   * included. The real memory behind `bytes`' value part; see value-arena.ts for its bound.
   */
  valuePageBytes: number;
}

/** What the leader-side helpers (`prepare`, `expiryCycle`) read: the table, read-only. */
export interface StoreEntries extends EntryTableView {
  readonly totalBytes: number;
  readonly ttlCount: number;
  ttlSlotAt(i: number): number;
  slotOf(key: string): number;
}

/** The state a snapshot starts from: small parts copied, entries by copy-on-write capture. */
export interface StoreCapture {
  index: number;
  capacityBytes: number;
  evictions: number;
  expirations: number;
  sessions: SessionsExport;
  entries: EntryCapture;
}

const NOT_APPLIED_EXISTS: Outcome = Object.freeze({ status: 'not-applied', reason: 'exists' });
const NOT_APPLIED_MISSING: Outcome = Object.freeze({ status: 'not-applied', reason: 'missing' });
const VERSION_MISMATCH: Outcome = Object.freeze({
  status: 'not-applied',
  reason: 'version-mismatch',
});
const OVER_CAPACITY: Outcome = Object.freeze({ status: 'refused', code: 'OVER_CAPACITY' });
const MALFORMED: Outcome = Object.freeze({ status: 'refused', code: 'MALFORMED_COMMAND' });

export class CacheStore {
  readonly capacityBytes: number;
  #table: EntryTable;
  #policy: GuardedPolicy;
  #sessions: ClientSessions;
  #appliedIndex = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #expirations = 0;

  constructor(options: CacheStoreOptions) {
    invariant(
      Number.isSafeInteger(options.capacityBytes) && options.capacityBytes > 0,
      'capacityBytes must be a positive integer',
    );
    this.capacityBytes = options.capacityBytes;
    this.#table = new EntryTable(options.valuePageBytes);
    const { policy } = options;
    this.#policy =
      policy instanceof GuardedPolicy
        ? policy
        : new GuardedPolicy({ create: policy === undefined ? undefined : () => policy });
    this.#sessions = new ClientSessions(options.sessions ?? DEFAULT_SESSION_LIMITS);
    this.#policy.attach(this.#table.readOnlyView());
  }

  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  get entries(): StoreEntries {
    return this.#table;
  }

  /** The guarded policy: every victim its walk names is a live handle, named once. */
  get policy(): GuardedPolicy {
    return this.#policy;
  }

  /** Leader-change hook: the host calls it when this replica becomes leader. */
  onBecomeLeader(): void {
    this.#policy.rebuild();
  }

  /**
   * Applies the committed log entry at `index` (strictly above the last one). Never throws
   * for any payload bytes: an undecodable entry or one of an unknown format version is
   * refused whole, identically on every replica, and only the applied index moves.
   */
  apply(index: number, payload: Uint8Array): ApplyResult {
    invariant(index > this.#appliedIndex, `apply of index ${index} after ${this.#appliedIndex}`);
    this.#appliedIndex = index;
    // Values stay views into the payload: every stored value is copied into the table's pages.
    const decoded = decodeEntry(payload, true);
    if (decoded.kind === 'unsupported')
      return { index, outcomes: [], refused: 'UNSUPPORTED_FORMAT' };
    if (decoded.kind === 'malformed') return { index, outcomes: [], refused: 'MALFORMED_COMMAND' };
    return { index, outcomes: this.#applyAll(index, decoded.at, decoded.commands) };
  }

  /**
   * `apply` for an entry already decoded (or never encoded: see `planEntry`), with the same
   * rules: `at` is the leader's clock written into the entry, `commands` its commands.
   */
  applyCommands(index: number, at: number, commands: readonly (Command | null)[]): ApplyResult {
    invariant(index > this.#appliedIndex, `apply of index ${index} after ${this.#appliedIndex}`);
    this.#appliedIndex = index;
    return { index, outcomes: this.#applyAll(index, at, commands) };
  }

  /** Moves the applied index over a log entry that is not a cache command (e.g. a config change). */
  skip(index: number): void {
    invariant(index > this.#appliedIndex, `skip of index ${index} after ${this.#appliedIndex}`);
    this.#appliedIndex = index;
  }

  // ---- Reads. `now` is the host's clock; an entry whose expiry is at or before it is hidden.

  /**
   * The value, as a view of the stored bytes: never mutate it. It stays valid after later
   * writes (value pages are append-only) but pins its 1 MiB page while held, so copy it if
   * you keep it.
   */
  get(key: string, now: number): Uint8Array | undefined {
    const slot = this.#liveSlot(key, now);
    if (slot < 0) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#table.touch(slot, now);
    this.#policy.onAccess(slot);
    return this.#table.value(slot);
  }

  /** GET with the metadata a client needs for compare-and-set. Counts as a read. */
  getEntry(key: string, now: number): EntryInfo | undefined {
    const value = this.get(key, now);
    if (value === undefined) return undefined;
    const table = this.#table;
    const slot = table.slotOf(key);
    return {
      value,
      version: table.version(slot),
      expiresAt: table.expiresAt(slot),
      createdAt: table.createdAt(slot),
    };
  }

  mget(keys: readonly string[], now: number): (Uint8Array | undefined)[] {
    return keys.map((key) => this.get(key, now));
  }

  /** Like Redis PTTL: ms left, -1 when the key has no expiry, -2 when it does not exist. */
  ttl(key: string, now: number): number {
    const slot = this.#liveSlot(key, now);
    if (slot < 0) return -2;
    const expiresAt = this.#table.expiresAt(slot);
    return expiresAt === NO_EXPIRY ? -1 : expiresAt - now;
  }

  stats(): CacheStats {
    return {
      keys: this.#table.size,
      bytes: this.#table.totalBytes,
      capacity: this.capacityBytes,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      expirations: this.#expirations,
      policy: this.#policy.name,
      policyHealth: this.#policy.health(),
      valuePageBytes: this.#table.valuePageBytes,
    };
  }

  /** Client sessions held (replicated state): how many, and their recorded outcomes. */
  sessionStats(): { sessions: number; outcomes: number } {
    return { sessions: this.#sessions.size, outcomes: this.#sessions.outcomeCount };
  }

  /**
   * A hex digest of the replicated state at `appliedIndex` (state-digest.ts): equal on every
   * replica at the same index. A pass over every key: for stats and tests, not the hot path.
   */
  digest(): string {
    return stateDigest({
      table: this.#table,
      evictions: this.#evictions,
      expirations: this.#expirations,
      sessions: this.#sessions,
    });
  }

  // ---- Snapshot support (see snapshot.ts).

  /** Starts a capture of the replicated state at the current applied index. */
  capture(): StoreCapture {
    return {
      index: this.#appliedIndex,
      capacityBytes: this.capacityBytes,
      evictions: this.#evictions,
      expirations: this.#expirations,
      sessions: this.#sessions.export(),
      entries: this.#table.beginCapture(this.#appliedIndex),
    };
  }

  /** Restore, step 1 of 2: adds one entry of a snapshot to a store that has applied nothing. */
  restoreEntry(entry: CapturedEntry): boolean {
    invariant(this.#appliedIndex === 0, 'restore into a fresh store only');
    if (this.#table.slotOf(entry.key) >= 0 || entry.version < 1) return false;
    const bytes = entryBytes(entry.key, entry.value);
    if (this.#table.totalBytes + bytes > this.capacityBytes) return false;
    this.#table.insert(
      entry.key,
      entry.value,
      bytes,
      entry.expiresAt,
      entry.createdAt,
      entry.version,
    );
    return true;
  }

  /** Restore, step 2 of 2: the rest of the state, once every entry is in. */
  restoreFinish(state: Omit<StoreCapture, 'entries' | 'capacityBytes'>): boolean {
    invariant(this.#appliedIndex === 0, 'restore into a fresh store only');
    const { clock, lastId, sessions } = state.sessions;
    if (!this.#sessions.import(clock, lastId, sessions)) return false;
    this.#appliedIndex = state.index;
    this.#evictions = state.evictions;
    this.#expirations = state.expirations;
    this.#policy.rebuild();
    return true;
  }

  // ---- Apply internals.

  #applyAll(index: number, at: number, commands: readonly (Command | null)[]): Outcome[] {
    this.#sessions.advance(at);
    const outcomes: Outcome[] = new Array(commands.length);
    for (let i = 0; i < commands.length; i++)
      outcomes[i] = this.#applyDeduplicated(index, at, commands[i]);
    return outcomes;
  }

  /** A command with a session applies once; one without (session 0) each time it comes. */
  #applyDeduplicated(index: number, at: number, command: Command | null): Outcome {
    if (command === null) return MALFORMED;
    if (command.op === 'open-session') {
      // The id rides in `count`: `version` is the entry's index, as for every applied command.
      return { status: 'applied', version: index, count: this.#sessions.open(command.clientId) };
    }
    if (command.session === 0) return this.#applyCommand(index, at, command);
    const admitted = this.#sessions.admit(command);
    if (admitted !== undefined) return admitted;
    const outcome = this.#applyCommand(index, at, command);
    this.#sessions.record(command, outcome);
    return outcome;
  }

  #applyCommand(index: number, at: number, command: Exclude<Command, OpenSessionCommand>): Outcome {
    switch (command.op) {
      case 'set':
        return this.#applySet(index, at, command);
      case 'mset':
        return this.#applyMset(index, at, command.keys, command.values, command.expiresAt);
      case 'del': {
        let count = 0;
        for (const key of command.keys) {
          const slot = this.#table.slotOf(key);
          if (slot < 0) continue;
          if (!this.#isExpired(slot, at)) count++;
          this.#remove(slot);
        }
        return { status: 'applied', version: index, count };
      }
      case 'expire':
        return this.#applyExpire(index, at, command);
      case 'evict':
      case 'expire-delete':
        return this.#applyConditionalDelete(index, command);
    }
  }

  #applySet(index: number, at: number, command: SetCommand): Outcome {
    const table = this.#table;
    const slot = table.slotOf(command.key);
    const live = slot >= 0 && !this.#isExpired(slot, at);
    if (command.condition === 'nx' && live) return NOT_APPLIED_EXISTS;
    if (command.condition === 'xx' && !live) return NOT_APPLIED_MISSING;
    if (command.ifVersion !== 0 && (!live || table.version(slot) !== command.ifVersion))
      return VERSION_MISMATCH;
    const bytes = entryBytes(command.key, command.value);
    const freed = slot >= 0 ? table.bytes(slot) : 0;
    if (table.totalBytes - freed + bytes > this.capacityBytes) return OVER_CAPACITY;
    const expiresAt = command.keepTtl && live ? table.expiresAt(slot) : command.expiresAt;
    this.#write(index, at, slot, live, command.key, command.value, bytes, expiresAt);
    return { status: 'applied', version: index, count: 1 };
  }

  /** All keys or none: the capacity check covers the whole command before anything changes. */
  #applyMset(
    index: number,
    at: number,
    keys: string[],
    values: Uint8Array[],
    expiresAt: number,
  ): Outcome {
    const table = this.#table;
    let total = table.totalBytes;
    for (let i = 0; i < keys.length; i++) {
      const slot = table.slotOf(keys[i]);
      total += entryBytes(keys[i], values[i]) - (slot >= 0 ? table.bytes(slot) : 0);
    }
    if (total > this.capacityBytes) return OVER_CAPACITY;
    for (let i = 0; i < keys.length; i++) {
      const slot = table.slotOf(keys[i]);
      const live = slot >= 0 && !this.#isExpired(slot, at);
      this.#write(
        index,
        at,
        slot,
        live,
        keys[i],
        values[i],
        entryBytes(keys[i], values[i]),
        expiresAt,
      );
    }
    return { status: 'applied', version: index, count: keys.length };
  }

  #applyExpire(index: number, at: number, command: ExpireCommand): Outcome {
    const slot = this.#table.slotOf(command.key);
    if (slot < 0 || this.#isExpired(slot, at)) return NOT_APPLIED_MISSING;
    if (command.expiresAt !== NO_EXPIRY && command.expiresAt <= at) {
      this.#remove(slot);
    } else {
      this.#table.updateExpiry(slot, command.expiresAt, index);
      this.#policy.onUpdate(slot);
    }
    return { status: 'applied', version: index, count: 1 };
  }

  /** Removes the key only if it still holds the version the leader saw. */
  #applyConditionalDelete(index: number, command: ConditionalDeleteCommand): Outcome {
    const slot = this.#table.slotOf(command.key);
    if (slot < 0) return NOT_APPLIED_MISSING;
    if (this.#table.version(slot) !== command.version) return VERSION_MISMATCH;
    this.#remove(slot);
    if (command.op === 'evict') this.#evictions++;
    else this.#expirations++;
    return { status: 'applied', version: index, count: 1 };
  }

  /** Writes a value whose room was already checked. An expired entry is replaced as new. */
  #write(
    index: number,
    at: number,
    slot: number,
    live: boolean,
    key: string,
    value: Uint8Array,
    bytes: number,
    expiresAt: number,
  ): void {
    const table = this.#table;
    if (live) {
      table.update(slot, value, bytes, expiresAt, index);
      table.touch(slot, at);
      this.#policy.onUpdate(slot);
      return;
    }
    if (slot >= 0) this.#remove(slot);
    this.#policy.onInsert(table.insert(key, value, bytes, expiresAt, at, index));
  }

  /** The policy hears of a change once it is made, so its failure cannot undo half of it. */
  #remove(slot: number): void {
    this.#table.remove(slot);
    this.#policy.onRemove(slot);
  }

  #isExpired(slot: number, now: number): boolean {
    const expiresAt = this.#table.expiresAt(slot);
    return expiresAt !== NO_EXPIRY && expiresAt <= now;
  }

  #liveSlot(key: string, now: number): number {
    const slot = this.#table.slotOf(key);
    return slot >= 0 && this.#isExpired(slot, now) ? -1 : slot;
  }
}
