// A plain, obviously correct model of the cache state machine for the property tests: a Map
// of entries, the sessions with their lowest pending seq, and a Map of every outcome ever
// recorded. No slots, no policy, no trimming.
import type { SessionLimits } from '../../src/cache/client-sessions.ts';
import {
  type Command,
  type CommandRequest,
  ENTRY_OVERHEAD_BYTES,
  NO_EXPIRY,
  type Outcome,
  type WriteId,
} from '../../src/cache/commands.ts';
import type { CapturedEntry } from '../../src/cache/entry-table.ts';

export interface ModelEntry {
  value: Uint8Array;
  expiresAt: number;
  createdAt: number;
  version: number;
}

const size = (key: string, value: Uint8Array) =>
  Buffer.byteLength(key) + value.byteLength + ENTRY_OVERHEAD_BYTES;

interface ModelSession {
  clientId: string;
  lastAt: number;
  lowest: number;
  nextSeq: number;
}

export class CacheModel {
  entries = new Map<string, ModelEntry>();
  /** Every outcome ever recorded, by `session#seq`. */
  recorded = new Map<string, Outcome>();
  /** Sessions the shard holds, least recently active first. */
  sessions = new Map<number, ModelSession>();
  lastSessionId = 0;
  /** The session each client writes with, as the client knows it. */
  clientSessions = new Map<string, number>();
  /** Requests with a write id sent so far, for retries. */
  history: CommandRequest[] = [];
  /** Every (session, seq) that applied (not recalled), to check it happens once. */
  appliedIds = new Set<string>();
  index = 0;
  now = 1_000_000;
  clock = 0;
  evictions = 0;
  expirations = 0;
  readonly capacity: number;
  readonly limits: SessionLimits;

  constructor(capacity: number, limits: SessionLimits) {
    this.capacity = capacity;
    this.limits = limits;
  }

  /**
   * The next write id of `clientId` in its session (undefined when it has none open), its
   * lowest pending seq `lag` below it (the writes in between still awaiting replies).
   */
  nextWriteId(clientId: string, lag: number): WriteId | undefined {
    const session = this.clientSessions.get(clientId);
    if (session === undefined) return undefined;
    const state = this.sessions.get(session);
    // The client's own count, kept while the shard may have dropped the session.
    const seq = state ? state.nextSeq++ : 1;
    return { clientId, session, seq, lowestPending: Math.max(1, seq - lag) };
  }

  /** Outcomes the shard must hold: those of live sessions at or above their lowest pending. */
  heldOutcomes(): number {
    let count = 0;
    for (const key of this.recorded.keys()) {
      const [session, seq] = key.split('#').map(Number) as [number, number];
      const state = this.sessions.get(session);
      if (state !== undefined && seq >= state.lowest) count++;
    }
    return count;
  }

  bytes(): number {
    let total = 0;
    for (const [key, entry] of this.entries) total += size(key, entry.value);
    return total;
  }

  isLive(key: string, at: number): boolean {
    const entry = this.entries.get(key);
    return entry !== undefined && (entry.expiresAt === NO_EXPIRY || entry.expiresAt > at);
  }

  /** Applies one entry's commands; returns the outcomes the store must give. */
  applyEntry(at: number, commands: Command[]): Outcome[] {
    this.index++;
    this.clock = Math.max(this.clock, at);
    for (const [id, session] of this.sessions)
      if (session.lastAt < this.clock - this.limits.idleMs) this.sessions.delete(id);
    return commands.map((command) => {
      if (command.op === 'open-session') {
        const id = ++this.lastSessionId;
        this.sessions.set(id, {
          clientId: command.clientId,
          lastAt: this.clock,
          lowest: 1,
          nextSeq: 1,
        });
        this.#bound();
        return { status: 'applied', version: this.index, count: id };
      }
      if (command.session === 0) return this.#apply(at, command);
      const session = this.sessions.get(command.session);
      if (session === undefined || session.clientId !== command.clientId)
        return { status: 'refused', code: 'SESSION_EXPIRED' };
      this.sessions.delete(command.session);
      this.sessions.set(command.session, session);
      session.lastAt = this.clock;
      session.lowest = Math.max(session.lowest, command.lowestPending);
      if (command.seq < session.lowest) return { status: 'unknown' };
      const id = `${command.session}#${command.seq}`;
      const old = this.recorded.get(id);
      if (old !== undefined) return old;
      const outcome = this.#apply(at, command);
      this.recorded.set(id, outcome);
      this.appliedIds.add(id);
      this.#bound();
      return outcome;
    });
  }

  #bound(): void {
    for (const id of this.sessions.keys()) {
      if (this.sessions.size <= this.limits.maxSessions) return;
      this.sessions.delete(id);
    }
  }

  /** Sorted like `readSnapshot`. */
  snapshotEntries(): CapturedEntry[] {
    return [...this.entries]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, entry]) => ({ key, ...entry, value: new Uint8Array(entry.value) }));
  }

  #apply(at: number, command: Exclude<Command, { op: 'open-session' }>): Outcome {
    const applied = (count: number): Outcome => ({ status: 'applied', version: this.index, count });
    switch (command.op) {
      case 'set': {
        const live = this.isLive(command.key, at);
        const old = this.entries.get(command.key);
        if (command.condition === 'nx' && live) return { status: 'not-applied', reason: 'exists' };
        if (command.condition === 'xx' && !live)
          return { status: 'not-applied', reason: 'missing' };
        if (command.ifVersion !== 0 && (!live || old?.version !== command.ifVersion)) {
          return { status: 'not-applied', reason: 'version-mismatch' };
        }
        const after =
          this.bytes() -
          (old ? size(command.key, old.value) : 0) +
          size(command.key, command.value);
        if (after > this.capacity) return { status: 'refused', code: 'OVER_CAPACITY' };
        this.entries.set(command.key, {
          value: command.value,
          expiresAt: command.keepTtl && live && old ? old.expiresAt : command.expiresAt,
          createdAt: live && old ? old.createdAt : at,
          version: this.index,
        });
        return applied(1);
      }
      case 'mset': {
        let after = this.bytes();
        command.keys.forEach((key, i) => {
          const old = this.entries.get(key);
          after += size(key, command.values[i]) - (old ? size(key, old.value) : 0);
        });
        if (after > this.capacity) return { status: 'refused', code: 'OVER_CAPACITY' };
        command.keys.forEach((key, i) => {
          const old = this.entries.get(key);
          const live = this.isLive(key, at);
          this.entries.set(key, {
            value: command.values[i],
            expiresAt: command.expiresAt,
            createdAt: live && old ? old.createdAt : at,
            version: this.index,
          });
        });
        return applied(command.keys.length);
      }
      case 'del': {
        let count = 0;
        for (const key of command.keys) {
          if (this.isLive(key, at)) count++;
          this.entries.delete(key);
        }
        return applied(count);
      }
      case 'expire': {
        const old = this.entries.get(command.key);
        if (!old || !this.isLive(command.key, at))
          return { status: 'not-applied', reason: 'missing' };
        if (command.expiresAt !== NO_EXPIRY && command.expiresAt <= at)
          this.entries.delete(command.key);
        else
          this.entries.set(command.key, {
            ...old,
            expiresAt: command.expiresAt,
            version: this.index,
          });
        return applied(1);
      }
      case 'evict':
      case 'expire-delete': {
        const old = this.entries.get(command.key);
        if (!old) return { status: 'not-applied', reason: 'missing' };
        if (old.version !== command.version)
          return { status: 'not-applied', reason: 'version-mismatch' };
        this.entries.delete(command.key);
        if (command.op === 'evict') this.evictions++;
        else this.expirations++;
        return applied(1);
      }
    }
  }
}
