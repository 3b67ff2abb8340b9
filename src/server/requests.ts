// The public API's requests (as @grpc/proto-loader decodes `proto/raftcache.proto` with
// `keepCase`, `longs: String`, `defaults`) turned into the cache's command requests, and the
// cache's outcomes turned into replies. Validation of sizes and TTLs stays the cache's
// (`validateCommand`); this module checks only what the wire can get wrong.
import {
  DEFAULT_SESSION_LIMITS,
  type DelRequest,
  type ExpireRequest,
  InvalidCommandError,
  InvalidTtlError,
  MAX_PENDING_SPAN,
  type MsetRequest,
  type OpenSessionRequest,
  type Outcome,
  type RefusalCode,
  type SetCondition,
  type SetRequest,
  type WriteId,
} from '../cache/index.ts';
import type { Consistency } from '../shard/replica.ts';

interface WireWriteId {
  client_id?: string;
  sequence?: string;
  session_id?: string;
  lowest_pending?: string;
}

export interface WireOpenSessionRequest {
  shard_id?: number;
  client_id?: string;
}

export interface WireSetRequest {
  key?: string;
  value?: Uint8Array;
  ttl_ms?: string;
  keep_ttl?: boolean;
  condition?: 'ALWAYS' | 'IF_ABSENT' | 'IF_PRESENT' | number;
  if_version?: string;
  write_id?: WireWriteId | null;
}

export interface WireDelRequest {
  keys?: string[];
  write_id?: WireWriteId | null;
}

export interface WireMSetRequest {
  entries?: { key?: string; value?: Uint8Array }[];
  ttl_ms?: string;
  write_id?: WireWriteId | null;
}

export interface WireExpireRequest {
  key?: string;
  ttl_ms?: string;
  persist?: boolean;
  write_id?: WireWriteId | null;
}

/** What a read request (Get, MGet, Ttl) says of how current its answer must be. */
export interface WireReadRequest {
  /** An enum name, or the number of a value this version does not define. */
  consistency?: string | number;
  max_staleness_ms?: string;
}

export interface ReadRequestOptions {
  readonly consistency: Consistency;
  /** A STALE read's bound on how long ago its replica last heard from the leader. */
  readonly maxStalenessMs: number | undefined;
}

const CONSISTENCIES: Readonly<Record<string, Consistency>> = {
  LINEARIZABLE: 'linearizable',
  LEASE: 'lease',
  STALE: 'stale',
};

const CONDITIONS: Readonly<Record<string, SetCondition>> = {
  ALWAYS: 'none',
  IF_ABSENT: 'nx',
  IF_PRESENT: 'xx',
};

/** A read's consistency and staleness bound; an unknown consistency is refused. */
export function readOptions(wire: WireReadRequest): ReadRequestOptions {
  const name = wire.consistency ?? 'LINEARIZABLE';
  const consistency = enumValue(CONSISTENCIES, name, 'consistency');
  const bound = toInteger(wire.max_staleness_ms ?? '0', 'max_staleness_ms');
  if (bound > 0 && consistency !== 'stale')
    throw new InvalidCommandError(`max_staleness_ms bounds STALE reads only, not ${name}`);
  return { consistency, maxStalenessMs: bound > 0 ? bound : undefined };
}

/**
 * The value an enum field names, from a table of the names this version defines (own keys
 * only: `constructor` names none); proto-loader passes an undefined value as its number.
 */
export function enumValue<T>(
  table: Readonly<Record<string, T>>,
  name: string | number,
  field: string,
): T {
  const value = typeof name === 'string' && Object.hasOwn(table, name) ? table[name] : undefined;
  if (value === undefined) throw new InvalidCommandError(`unknown ${field} ${name}`);
  return value;
}

/**
 * The write id a request carries, as the cache checks it (`validateCommand`: an empty
 * `client_id` or a zero field is refused); undefined when the request has none, which makes
 * the write non-idempotent (never deduplicated).
 */
export function writeIdentity(writeId: WireWriteId | null | undefined): WriteId | undefined {
  if (writeId === null || writeId === undefined) return undefined;
  return {
    clientId: writeId.client_id ?? '',
    session: toInteger(writeId.session_id ?? '0', 'write_id.session_id'),
    seq: toInteger(writeId.sequence ?? '0', 'write_id.sequence'),
    lowestPending: toInteger(writeId.lowest_pending ?? '0', 'write_id.lowest_pending'),
  };
}

/** The `writeId` field of a request: absent when the client sent none. */
function tagged(id: WriteId | undefined): { writeId?: WriteId } {
  return id === undefined ? {} : { writeId: id };
}

export function openSessionRequest(wire: WireOpenSessionRequest): OpenSessionRequest {
  return { op: 'open-session', clientId: wire.client_id ?? '' };
}

/** The shard an OpenSession names: a data shard (from 1; shard 0 is the metadata group). */
export function openSessionShard(wire: WireOpenSessionRequest): number {
  const shardId = wire.shard_id ?? 0;
  if (!Number.isSafeInteger(shardId) || shardId < 1)
    throw new InvalidCommandError(`shard_id ${shardId} is not a data shard (they count from 1)`);
  return shardId;
}

/** The reply to OpenSession, from the outcome of its command (whose `count` is the session id). */
export function openSessionReply(outcome: Outcome): {
  session_id: number;
  max_pending_span: number;
  idle_timeout_ms: number;
} {
  if (outcome.status !== 'applied') throw new RefusedError('MALFORMED_COMMAND');
  return {
    session_id: outcome.count,
    max_pending_span: MAX_PENDING_SPAN,
    idle_timeout_ms: DEFAULT_SESSION_LIMITS.idleMs,
  };
}

export function setRequest(wire: WireSetRequest, id: WriteId | undefined): SetRequest {
  const ttlMs = toInteger(wire.ttl_ms ?? '0', 'ttl_ms');
  if (ttlMs < 0) throw new InvalidTtlError(`ttl_ms ${ttlMs} is negative; use 0 for no expiry`);
  if (ttlMs > 0 && wire.keep_ttl)
    throw new InvalidTtlError('keep_ttl keeps the current expiry: it takes no ttl_ms');
  const condition = enumValue(CONDITIONS, wire.condition ?? 'ALWAYS', 'condition');
  const ifVersion = toInteger(wire.if_version ?? '0', 'if_version');
  return {
    op: 'set',
    key: wire.key ?? '',
    value: wire.value ?? new Uint8Array(0),
    ...(ttlMs > 0 ? { px: ttlMs } : {}),
    ...(wire.keep_ttl ? { keepTtl: true } : {}),
    ...(condition !== 'none' ? { condition } : {}),
    ...(ifVersion > 0 ? { ifVersion } : {}),
    ...tagged(id),
  };
}

export function delRequest(wire: WireDelRequest, id: WriteId | undefined): DelRequest {
  return { op: 'del', keys: wire.keys ?? [], ...tagged(id) };
}

export function msetRequest(wire: WireMSetRequest, id: WriteId | undefined): MsetRequest {
  const ttlMs = toInteger(wire.ttl_ms ?? '0', 'ttl_ms');
  if (ttlMs < 0) throw new InvalidTtlError(`ttl_ms ${ttlMs} is negative; use 0 for no expiry`);
  const entries = (wire.entries ?? []).map((e) => ({
    key: e.key ?? '',
    value: e.value ?? new Uint8Array(0),
  }));
  return { op: 'mset', entries, ...(ttlMs > 0 ? { px: ttlMs } : {}), ...tagged(id) };
}

export function expireRequest(wire: WireExpireRequest, id: WriteId | undefined): ExpireRequest {
  const ttlMs = wire.persist ? null : toInteger(wire.ttl_ms ?? '0', 'ttl_ms');
  return { op: 'expire', key: wire.key ?? '', ttlMs, ...tagged(id) };
}

const REFUSAL_MESSAGES: Readonly<Record<string, string>> = {
  OVER_CAPACITY: 'the shard is full and nothing can be evicted for this write',
  SESSION_EXPIRED:
    'the write did not apply: its session is not open on this shard (it expired, or was never opened); open a new session and retry only a write no earlier attempt of which may have applied',
};

/** The shard refused a write (full, malformed, a format it cannot read): answered as an error. */
export class RefusedError extends Error {
  override name = 'RefusedError';
  readonly code: RefusalCode;

  constructor(code: RefusalCode) {
    super(REFUSAL_MESSAGES[code] ?? `the shard refused the write (${code})`);
    this.code = code;
  }
}

/** The outcome, unless it is a refusal, which is thrown as a `RefusedError`. */
export function settled(outcome: Outcome): Exclude<Outcome, { status: 'refused' }> {
  if (outcome.status === 'refused') throw new RefusedError(outcome.code);
  return outcome;
}

/** A reply's `outcome` and `version` from the cache's outcome (a refusal is answered as an error). */
export function outcomeReply(outcome: Exclude<Outcome, { status: 'refused' }>): {
  outcome: 'APPLIED' | 'NOT_APPLIED' | 'UNKNOWN';
  version: number;
} {
  switch (outcome.status) {
    case 'applied':
      return { outcome: 'APPLIED', version: outcome.version };
    case 'not-applied':
      return { outcome: 'NOT_APPLIED', version: 0 };
    case 'unknown':
      return { outcome: 'UNKNOWN', version: 0 };
  }
}

function toInteger(text: string, field: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n))
    throw new InvalidCommandError(`${field} "${text}" is not an integer`);
  return n;
}
