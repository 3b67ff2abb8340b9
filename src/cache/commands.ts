// What clients ask for (requests, with relative TTLs), what the log carries (commands, with
// absolute expiry times chosen by the leader), and what apply answers (outcomes).
import {
  EntryTooLargeError,
  InvalidCommandError,
  InvalidTtlError,
  KeyTooLongError,
  ValueTooLargeError,
} from './errors.ts';

/** `expiresAt` value meaning "never expires". Real expiry times are positive epoch ms. */
export const NO_EXPIRY = 0;
/** `ifVersion` value meaning "no compare-and-set". Raft indexes, hence versions, start at 1. */
export const ANY_VERSION = 0;
/**
 * How far past the lowest pending seq of its session a write's seq may be: so a session holds
 * at most this many outcomes. Part of the replicated rules (apply refuses a command beyond
 * it), documented in the `.proto`.
 */
export const MAX_PENDING_SPAN = 4096;
/** Longest client id, UTF-8 bytes: it is carried by every write of the client. */
export const MAX_CLIENT_ID_BYTES = 128;

/**
 * Bytes charged per entry on top of its key (UTF-8) and value bytes. It approximates the
 * store's real cost per entry (index slot, metadata arrays, value location; `npm run
 * bench:store` measures about 170-180 bytes) and is part of the replicated arithmetic:
 * changing it needs a new format version.
 */
export const ENTRY_OVERHEAD_BYTES = 192;

export type SetCondition = 'none' | 'nx' | 'xx';

/**
 * A write's identity for exactly-once retries (client-sessions.ts). A retry carries the same
 * `clientId`, `session` and `seq`; `lowestPending` may have grown since.
 */
export interface WriteId {
  /** The client's name, as it opened the session with. */
  readonly clientId: string;
  /** The session the shard opened for the client (its open-session outcome's `count`). */
  readonly session: number;
  /** The write's number in its session: 1, 2, 3, ... */
  readonly seq: number;
  /** The lowest seq of the session still awaiting its reply (this one's at most). */
  readonly lowestPending: number;
}

/**
 * The write id fields of a command without one: session 0, not deduplicated. Leader-made
 * commands (evictions, expiry deletes) and writes a client sent without a write id.
 */
export const NO_WRITE_ID: WriteId = Object.freeze({
  clientId: '',
  session: 0,
  seq: 0,
  lowestPending: 0,
});

/** A command carries its write id's fields (NO_WRITE_ID's when it has none). */
type Tagged = WriteId;

// ---- Requests: validated by `validateCommand`, turned into commands by `prepare`.

interface WriteRequest {
  /** Absent: the write is not idempotent (applied once per request, never deduplicated). */
  writeId?: WriteId;
}

export interface SetRequest extends WriteRequest {
  op: 'set';
  key: string;
  value: Uint8Array;
  /** EX: time to live in seconds. At most one of `ex`, `px`, `keepTtl`. */
  ex?: number;
  /** PX: time to live in milliseconds. */
  px?: number;
  /** KEEPTTL: keep the expiry time of the entry it replaces. */
  keepTtl?: boolean;
  condition?: SetCondition;
  /** Compare-and-set: apply only if the live entry has this version. */
  ifVersion?: number;
}

export interface DelRequest extends WriteRequest {
  op: 'del';
  keys: string[];
}

/** MSET: every pair applies together, or none does. */
export interface MsetRequest extends WriteRequest {
  op: 'mset';
  entries: { key: string; value: Uint8Array }[];
  /** One time to live in ms for all the pairs; none if absent. */
  px?: number;
}

/** EXPIRE / PEXPIRE / PERSIST: `ttlMs: null` clears the expiry; `ttlMs <= 0` deletes the key. */
export interface ExpireRequest extends WriteRequest {
  op: 'expire';
  key: string;
  ttlMs: number | null;
}

/** Opens a session for `clientId`; its outcome's `count` is the session id. */
export interface OpenSessionRequest {
  op: 'open-session';
  clientId: string;
}

export type CommandRequest =
  | SetRequest
  | DelRequest
  | MsetRequest
  | ExpireRequest
  | OpenSessionRequest;

// ---- Commands: what a log entry carries. Every time in them is absolute.

export interface SetCommand extends Tagged {
  op: 'set';
  key: string;
  value: Uint8Array;
  expiresAt: number;
  keepTtl: boolean;
  condition: SetCondition;
  ifVersion: number;
}

export interface DelCommand extends Tagged {
  op: 'del';
  keys: string[];
}

export interface MsetCommand extends Tagged {
  op: 'mset';
  keys: string[];
  values: Uint8Array[];
  expiresAt: number;
}

export interface ExpireCommand extends Tagged {
  op: 'expire';
  key: string;
  /** NO_EXPIRY clears it; a time at or before the entry's `at` deletes the key. */
  expiresAt: number;
}

/** Leader-made delete of a key that holds `version`, either an eviction or an expiry. */
export interface ConditionalDeleteCommand extends Tagged {
  op: 'evict' | 'expire-delete';
  key: string;
  version: number;
}

/** Opens the session whose id is this entry's index. */
export interface OpenSessionCommand {
  op: 'open-session';
  clientId: string;
}

export type Command =
  | OpenSessionCommand
  | SetCommand
  | DelCommand
  | MsetCommand
  | ExpireCommand
  | ConditionalDeleteCommand;

// ---- Outcomes.

export type NotAppliedReason = 'exists' | 'missing' | 'version-mismatch';
export type RefusalCode =
  | 'OVER_CAPACITY'
  | 'MALFORMED_COMMAND'
  | 'UNSUPPORTED_FORMAT'
  /** The write's session is not open on the shard (expired, or never opened): not applied. */
  | 'SESSION_EXPIRED';

export type Outcome =
  /**
   * `version` is the entry's index; `count` is how many keys DEL removed, or for an
   * open-session the session id.
   */
  | { status: 'applied'; version: number; count: number }
  | { status: 'not-applied'; reason: NotAppliedReason }
  | { status: 'refused'; code: RefusalCode }
  /**
   * A retry of a write whose seq is below its session's lowest pending one (the client had
   * said it had the reply): it may or may not have applied, and does not apply now.
   */
  | { status: 'unknown' };

// ---- Validation, before proposal.

export interface CommandLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
  /** Longest accepted time to live, in ms. */
  maxTtlMs: number;
  maxBatchKeys: number;
  /** The shard capacity: an entry larger than it can never fit. */
  capacityBytes: number;
}

export const DEFAULT_LIMITS: Omit<CommandLimits, 'capacityBytes'> = {
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  maxTtlMs: 10 * 365 * 24 * 3600 * 1000,
  maxBatchKeys: 1000,
};

export function entryBytes(key: string, value: Uint8Array): number {
  return Buffer.byteLength(key, 'utf8') + value.byteLength + ENTRY_OVERHEAD_BYTES;
}

/** Throws a typed CacheError naming the first problem; returns nothing when `request` is fine. */
export function validateCommand(request: CommandRequest, limits: CommandLimits): void {
  if (request === null || typeof request !== 'object') {
    throw new InvalidCommandError('command must be an object');
  }
  if (request.op === 'open-session') {
    validateClientId(request.clientId);
    return;
  }
  if (request.writeId !== undefined) validateWriteId(request.writeId);
  switch (request.op) {
    case 'set':
      validateKey(request.key, limits);
      validateValue(request.key, request.value, limits);
      validateSetOptions(request, limits);
      return;
    case 'del':
      validateKeyList(request.keys, limits);
      return;
    case 'mset': {
      if (!Array.isArray(request.entries) || request.entries.length === 0) {
        throw new InvalidCommandError('mset needs at least one entry');
      }
      if (request.entries.length > limits.maxBatchKeys) {
        throw new InvalidCommandError(
          `mset has ${request.entries.length} keys; the limit is ${limits.maxBatchKeys}`,
        );
      }
      const seen = new Set<string>();
      let total = 0;
      for (const entry of request.entries) {
        validateKey(entry?.key, limits);
        validateValue(entry.key, entry.value, limits);
        if (seen.has(entry.key))
          throw new InvalidCommandError(`mset names key ${JSON.stringify(entry.key)} twice`);
        seen.add(entry.key);
        total += entryBytes(entry.key, entry.value);
      }
      if (total > limits.capacityBytes) throw new EntryTooLargeError(total, limits.capacityBytes);
      if (request.px !== undefined) validateTtl(request.px, limits, 'px');
      return;
    }
    case 'expire':
      validateKey(request.key, limits);
      if (
        request.ttlMs !== null &&
        (!Number.isSafeInteger(request.ttlMs) || request.ttlMs > limits.maxTtlMs)
      ) {
        throw new InvalidTtlError(`ttlMs must be null or an integer of at most ${limits.maxTtlMs}`);
      }
      return;
    default:
      throw new InvalidCommandError(
        `unknown op ${JSON.stringify((request as { op: unknown }).op)}`,
      );
  }
}

function validateClientId(clientId: unknown): void {
  if (typeof clientId !== 'string' || clientId === '')
    throw new InvalidCommandError('client_id must be a non-empty string');
  const bytes = Buffer.byteLength(clientId, 'utf8');
  if (bytes > MAX_CLIENT_ID_BYTES)
    throw new InvalidCommandError(
      `client_id is ${bytes} bytes; the limit is ${MAX_CLIENT_ID_BYTES}`,
    );
}

function validateWriteId(id: WriteId): void {
  if (id === null || typeof id !== 'object')
    throw new InvalidCommandError('write_id must be an object');
  validateClientId(id.clientId);
  const { session, seq, lowestPending } = id;
  if (!Number.isSafeInteger(session) || session < 1)
    throw new InvalidCommandError('write_id.session must be a session id from OpenSession');
  if (!Number.isSafeInteger(seq) || seq < 1)
    throw new InvalidCommandError('write_id.sequence must be a positive integer');
  if (!Number.isSafeInteger(lowestPending) || lowestPending < 1 || lowestPending > seq)
    throw new InvalidCommandError(
      `write_id.lowest_pending must be from 1 to the write's sequence ${seq}`,
    );
  if (seq - lowestPending >= MAX_PENDING_SPAN)
    throw new InvalidCommandError(
      `write_id.sequence ${seq} is ${MAX_PENDING_SPAN} or more past write_id.lowest_pending ${lowestPending}: a session has at most ${MAX_PENDING_SPAN} writes pending; wait for the oldest's reply or open another session`,
    );
}

/** The keys of a read (GET, MGET, TTL): each a key as a write takes it, at most a batch of them. */
export function validateReadKeys(keys: readonly unknown[], limits: CommandLimits): void {
  if (keys.length > limits.maxBatchKeys) {
    throw new InvalidCommandError(
      `the read names ${keys.length} keys; the limit is ${limits.maxBatchKeys}`,
    );
  }
  for (const key of keys) validateKey(key, limits);
}

function validateKey(key: unknown, limits: CommandLimits): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new InvalidCommandError('key must be a non-empty string');
  }
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > limits.maxKeyBytes) throw new KeyTooLongError(bytes, limits.maxKeyBytes);
}

function validateValue(key: string, value: unknown, limits: CommandLimits): void {
  if (!(value instanceof Uint8Array)) throw new InvalidCommandError('value must be bytes');
  if (value.byteLength > limits.maxValueBytes) {
    throw new ValueTooLargeError(value.byteLength, limits.maxValueBytes);
  }
  const bytes = entryBytes(key, value);
  if (bytes > limits.capacityBytes) throw new EntryTooLargeError(bytes, limits.capacityBytes);
}

function validateKeyList(keys: unknown, limits: CommandLimits): void {
  if (!Array.isArray(keys) || keys.length === 0)
    throw new InvalidCommandError('del needs at least one key');
  if (keys.length > limits.maxBatchKeys) {
    throw new InvalidCommandError(
      `del has ${keys.length} keys; the limit is ${limits.maxBatchKeys}`,
    );
  }
  for (const key of keys) validateKey(key, limits);
}

function validateSetOptions(request: SetRequest, limits: CommandLimits): void {
  const ttlOptions =
    Number(request.ex !== undefined) +
    Number(request.px !== undefined) +
    Number(request.keepTtl === true);
  if (ttlOptions > 1) throw new InvalidTtlError('set takes at most one of ex, px and keepTtl');
  if (request.ex !== undefined) {
    if (!Number.isSafeInteger(request.ex))
      throw new InvalidTtlError('ex must be a whole number of seconds');
    validateTtl(request.ex * 1000, limits, 'ex');
  }
  if (request.px !== undefined) validateTtl(request.px, limits, 'px');
  const condition = request.condition ?? 'none';
  if (condition !== 'none' && condition !== 'nx' && condition !== 'xx') {
    throw new InvalidCommandError(
      `condition must be nx, xx or none, not ${JSON.stringify(condition)}`,
    );
  }
  if (request.ifVersion !== undefined) {
    if (!Number.isSafeInteger(request.ifVersion) || request.ifVersion < 1) {
      throw new InvalidCommandError('ifVersion must be a positive integer');
    }
    if (condition === 'nx') throw new InvalidCommandError('ifVersion and nx contradict each other');
  }
}

function validateTtl(ttlMs: number, limits: CommandLimits, name: string): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > limits.maxTtlMs) {
    throw new InvalidTtlError(
      `${name} must be a positive integer of at most ${limits.maxTtlMs} ms`,
    );
  }
}
