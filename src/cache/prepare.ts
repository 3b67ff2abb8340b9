// The leader's side of a write: turn validated client requests into one log-entry payload.
// Pure: it reads the store and its policy and changes neither. It
// - turns relative TTLs into absolute expiry times on the leader's clock `now`, which also
//   becomes the entry's `at`;
// - when the writes would take the shard over capacity, asks the eviction policy for
//   victims and puts their conditional deletes just before the write that needs the room,
//   in the same entry, so the bound holds on every replica after every entry.
// Apply checks capacity again, so a plan that turns out short (another entry in flight
// filled the room first, a victim changed version) ends in an OVER_CAPACITY outcome, never
// in a shard over its bound.

import { encodeEntry } from './codec.ts';
import type { Command, CommandRequest, ConditionalDeleteCommand } from './commands.ts';
import { ANY_VERSION, entryBytes, NO_EXPIRY, NO_WRITE_ID } from './commands.ts';
import type { CacheStore, StoreEntries } from './store.ts';

export interface PreparedEntry {
  /** The log-entry payload to propose. */
  payload: Uint8Array;
  /** The commands it carries, in order (evictions included). */
  commands: Command[];
  /** For request i, the position of its outcome in `apply(...).outcomes`. */
  outcomeIndex: number[];
  /**
   * Bytes the entry adds if every write in it applies (negative if it frees more). While it
   * is in flight, the host adds this to `inflightBytes` of later prepares.
   */
  bytesDelta: number;
  /** Keys it evicts; while it is in flight, pass them as `inflightVictims`. */
  evictedKeys: string[];
}

export interface PrepareOptions {
  /**
   * Bytes that entries proposed but not yet applied will add; the host keeps the sum
   * (0 when nothing is in flight). Counting them makes evictions plan for those too.
   */
  inflightBytes?: number;
  /** Keys whose eviction is already in flight, not to be chosen twice. */
  inflightVictims?: ReadonlySet<string>;
}

/** What `planEntry` decides: `PreparedEntry` before it is encoded. */
export type PlannedEntry = Omit<PreparedEntry, 'payload'>;

/** Builds one entry from requests that passed `validateCommand`. */
export function prepare(
  store: CacheStore,
  requests: readonly CommandRequest[],
  now: number,
  options: PrepareOptions = {},
): PreparedEntry {
  const plan = planEntry(store, requests, now, options);
  return { payload: encodeEntry({ at: now, commands: plan.commands }), ...plan };
}

/**
 * `prepare` without the encoding: the commands, evictions included, for a host that hands
 * them to `CacheStore.applyCommands` itself (benchmarks, an in-process replica).
 */
export function planEntry(
  store: CacheStore,
  requests: readonly CommandRequest[],
  now: number,
  options: PrepareOptions = {},
): PlannedEntry {
  const plan = new RoomPlan(store, options);
  const outcomeIndex: number[] = [];
  for (const request of requests) {
    const command = toCommand(request, now);
    plan.makeRoomFor(command);
    outcomeIndex.push(plan.commands.length);
    plan.commands.push(command);
  }
  return {
    commands: plan.commands,
    outcomeIndex,
    bytesDelta: plan.bytesDelta,
    evictedKeys: plan.evictedKeys,
  };
}

/** A request as the log carries it: every TTL made absolute on the leader's clock. */
export function toCommand(request: CommandRequest, now: number): Command {
  if (request.op === 'open-session') return { op: 'open-session', clientId: request.clientId };
  const { clientId, session, seq, lowestPending } = request.writeId ?? NO_WRITE_ID;
  switch (request.op) {
    case 'set': {
      const ttlMs = request.px ?? (request.ex !== undefined ? request.ex * 1000 : undefined);
      return {
        op: 'set',
        clientId,
        session,
        seq,
        lowestPending,
        key: request.key,
        value: request.value,
        expiresAt: ttlMs === undefined ? NO_EXPIRY : now + ttlMs,
        keepTtl: request.keepTtl === true,
        condition: request.condition ?? 'none',
        ifVersion: request.ifVersion ?? ANY_VERSION,
      };
    }
    case 'del':
      return { op: 'del', clientId, session, seq, lowestPending, keys: [...request.keys] };
    case 'mset':
      return {
        op: 'mset',
        clientId,
        session,
        seq,
        lowestPending,
        keys: request.entries.map((entry) => entry.key),
        values: request.entries.map((entry) => entry.value),
        expiresAt: request.px === undefined ? NO_EXPIRY : now + request.px,
      };
    case 'expire':
      // A TTL of 0 or less deletes the key (as in Redis); `now` is the earliest such time.
      return {
        op: 'expire',
        clientId,
        session,
        seq,
        lowestPending,
        key: request.key,
        expiresAt: request.ttlMs === null ? NO_EXPIRY : now + Math.max(0, request.ttlMs),
      };
  }
}

const NO_VICTIMS: ReadonlySet<string> = new Set();

/** The running byte count of the entry being built, as if every write in it applies. */
class RoomPlan {
  readonly commands: Command[] = [];
  readonly evictedKeys: string[] = [];
  #entries: StoreEntries;
  #startBytes: number;
  #store: CacheStore;
  #bytes: number;
  /** Bytes each key will hold after the commands planned so far (0: deleted). */
  #planned = new Map<string, number>();
  #inflightVictims: ReadonlySet<string>;

  constructor(store: CacheStore, options: PrepareOptions) {
    this.#store = store;
    this.#entries = store.entries;
    this.#bytes = store.entries.totalBytes + (options.inflightBytes ?? 0);
    this.#startBytes = this.#bytes;
    this.#inflightVictims = options.inflightVictims ?? NO_VICTIMS;
  }

  get bytesDelta(): number {
    return this.#bytes - this.#startBytes;
  }

  makeRoomFor(command: Command): void {
    // A single SET, the common write, is planned without building the list of changes.
    if (command.op === 'set') {
      this.#plan(command.key, entryBytes(command.key, command.value), this.#bytesOf(command.key));
      return;
    }
    const changes = this.#byteChanges(command);
    let delta = 0;
    for (const [key, bytes] of changes) delta += bytes - this.#bytesOf(key);
    const over = this.#bytes + delta - this.#store.capacityBytes;
    if (over > 0) this.#evict(over, new Set(changes.map(([key]) => key)));
    for (const [key, bytes] of changes) {
      this.#bytes += bytes - this.#bytesOf(key);
      this.#planned.set(key, bytes);
    }
  }

  /** Plans `key` to hold `bytes` where it holds `held` now, evicting others if needed. */
  #plan(key: string, bytes: number, held: number): void {
    const over = this.#bytes + bytes - held - this.#store.capacityBytes;
    if (over > 0) this.#evict(over, key);
    this.#bytes += bytes - held;
    this.#planned.set(key, bytes);
  }

  /** Worst case: conditional writes are assumed to apply. */
  #byteChanges(command: Command): [string, number][] {
    switch (command.op) {
      case 'set':
        return [[command.key, entryBytes(command.key, command.value)]];
      case 'mset':
        return command.keys.map((key, i) => [key, entryBytes(key, command.values[i])]);
      case 'del':
        return command.keys.map((key) => [key, 0]);
      default:
        return [];
    }
  }

  /** `protect`: the keys the command being planned writes, never its own victims. */
  #evict(needed: number, protect: string | ReadonlySet<string>): void {
    const entries = this.#entries;
    let freed = 0;
    // The guard (policy-guard.ts) hands out live handles only, each once a walk.
    for (const slot of this.#store.policy.victims(needed)) {
      const key = entries.key(slot);
      if (typeof protect === 'string' ? key === protect : protect.has(key)) continue;
      if (this.#planned.has(key) || this.#inflightVictims.has(key)) continue;
      const victim: ConditionalDeleteCommand = {
        op: 'evict',
        ...NO_WRITE_ID,
        key,
        version: entries.version(slot),
      };
      this.commands.push(victim);
      this.evictedKeys.push(key);
      freed += entries.bytes(slot);
      this.#planned.set(key, 0);
      // Checked after a victim, not before the next: a walk is not resumed for nothing.
      if (freed >= needed) break;
    }
    this.#bytes -= freed;
  }

  #bytesOf(key: string): number {
    const planned = this.#planned.get(key);
    if (planned !== undefined) return planned;
    const slot = this.#entries.slotOf(key);
    return slot >= 0 ? this.#entries.bytes(slot) : 0;
  }
}
