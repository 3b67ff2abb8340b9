// The public API's requests (as @grpc/proto-loader decodes `proto/raftcache.proto` with
// `keepCase`, `longs: String`, `defaults`) turned into the cache's command requests, and the
// cache's outcomes turned into replies. Validation of sizes and TTLs stays the cache's
// (`validateCommand`); this module checks only what the wire can get wrong.
import {
  type DelRequest,
  type ExpireRequest,
  InvalidCommandError,
  InvalidTtlError,
  type MsetRequest,
  type Outcome,
  type RefusalCode,
  type SetCondition,
  type SetRequest,
} from '../cache/index.ts';
import type { Consistency } from '../shard/replica.ts';

/** The writer's identity for exactly-once retries; the server makes one up when absent. */
export interface WriteIdentity {
  readonly clientId: string;
  readonly seq: number;
}

interface WireWriteId {
  client_id?: string;
  sequence?: string;
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
 * The write's identity: the client's, when it sent one (a retry must carry the same), else
 * `fallback` (the server's own, fresh for every request).
 */
export function writeIdentity(
  writeId: WireWriteId | null | undefined,
  fallback: () => WriteIdentity,
): WriteIdentity {
  if (!writeId?.client_id) return fallback();
  const seq = toInteger(writeId.sequence ?? '0', 'write_id.sequence');
  if (seq < 1) throw new InvalidCommandError('write_id.sequence must be a positive integer');
  return { clientId: writeId.client_id, seq };
}

export function setRequest(wire: WireSetRequest, id: WriteIdentity): SetRequest {
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
    ...id,
  };
}

export function delRequest(wire: WireDelRequest, id: WriteIdentity): DelRequest {
  return { op: 'del', keys: wire.keys ?? [], ...id };
}

export function msetRequest(wire: WireMSetRequest, id: WriteIdentity): MsetRequest {
  const ttlMs = toInteger(wire.ttl_ms ?? '0', 'ttl_ms');
  if (ttlMs < 0) throw new InvalidTtlError(`ttl_ms ${ttlMs} is negative; use 0 for no expiry`);
  const entries = (wire.entries ?? []).map((e) => ({
    key: e.key ?? '',
    value: e.value ?? new Uint8Array(0),
  }));
  return { op: 'mset', entries, ...(ttlMs > 0 ? { px: ttlMs } : {}), ...id };
}

export function expireRequest(wire: WireExpireRequest, id: WriteIdentity): ExpireRequest {
  const ttlMs = wire.persist ? null : toInteger(wire.ttl_ms ?? '0', 'ttl_ms');
  return { op: 'expire', key: wire.key ?? '', ttlMs, ...id };
}

/** The shard refused a write (full, malformed, a format it cannot read): answered as an error. */
export class RefusedError extends Error {
  override name = 'RefusedError';
  readonly code: RefusalCode;

  constructor(code: RefusalCode) {
    super(
      code === 'OVER_CAPACITY'
        ? 'the shard is full and nothing can be evicted for this write'
        : `the shard refused the write (${code})`,
    );
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
