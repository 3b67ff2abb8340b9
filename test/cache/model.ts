// A plain, obviously correct model of the cache state machine for the property tests: a Map
// of entries and a Map of every outcome ever recorded. No slots, no policy, no windows.
import {
  type Command,
  type CommandRequest,
  ENTRY_OVERHEAD_BYTES,
  NO_EXPIRY,
  type Outcome,
  SYSTEM_CLIENT,
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

export class CacheModel {
  entries = new Map<string, ModelEntry>();
  recorded = new Map<string, Outcome>();
  /** Requests sent so far, for retries. */
  history: CommandRequest[] = [];
  nextSeq = new Map<string, number>();
  index = 0;
  now = 1_000_000;
  evictions = 0;
  expirations = 0;
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  bytes(): number {
    let total = 0;
    for (const [key, entry] of this.entries) total += size(key, entry.value);
    return total;
  }

  seqFor(clientId: string): number {
    const seq = (this.nextSeq.get(clientId) ?? 0) + 1;
    this.nextSeq.set(clientId, seq);
    return seq;
  }

  isLive(key: string, at: number): boolean {
    const entry = this.entries.get(key);
    return entry !== undefined && (entry.expiresAt === NO_EXPIRY || entry.expiresAt > at);
  }

  /** Applies one entry's commands; returns the outcomes the store must give. */
  applyEntry(at: number, commands: Command[]): Outcome[] {
    this.index++;
    return commands.map((command) => {
      if (command.clientId === SYSTEM_CLIENT) return this.#apply(at, command);
      const id = `${command.clientId}#${command.seq}`;
      const old = this.recorded.get(id);
      if (old !== undefined) return old;
      const outcome = this.#apply(at, command);
      this.recorded.set(id, outcome);
      return outcome;
    });
  }

  /** Sorted like `readSnapshot`. */
  snapshotEntries(): CapturedEntry[] {
    return [...this.entries]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, entry]) => ({ key, ...entry, value: new Uint8Array(entry.value) }));
  }

  #apply(at: number, command: Command): Outcome {
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
