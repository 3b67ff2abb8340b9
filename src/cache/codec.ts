// The one module that turns cache commands, log entries and snapshot chunks into bytes and
// back, with msgpackr's options from `src/codec/msgpack.ts` (copied byte strings, no shared
// structures, numbers for int64). One exception, `decodeEntry(bytes, true)`, used by apply
// alone: there values stay views because apply copies each one into the store's value pages
// before it returns (value-arena.ts), so a second copy would only cost time.
// Commands travel as tuples (op code first), which are smaller and faster than maps.
// Every encoded record starts with a format version byte, read before anything else, so a
// build can refuse a record from a newer one cleanly.
import { crc32 } from 'node:zlib';
import { RESERVE_START_SPACE } from 'msgpackr';
import { newPackr, newUnpackr } from '../codec/msgpack.ts';
import type { Command, SetCondition, WriteId } from './commands.ts';
import { MAX_PENDING_SPAN } from './commands.ts';

/**
 * Version of the log-entry payload format (the first byte of every payload). 2: commands
 * carry a session write id (client, session, seq, lowest pending), and sessions open
 * through the log.
 */
export const ENTRY_FORMAT_VERSION = 2;
/** Version of the snapshot chunk format (the first byte of every chunk). 2: client sessions. */
export const SNAPSHOT_FORMAT_VERSION = 2;

const packr = newPackr();
const unpackr = newUnpackr();
const viewingUnpackr = newUnpackr(true);

const OP_SET = 1;
const OP_DEL = 2;
const OP_MSET = 3;
const OP_EXPIRE = 4;
const OP_EVICT = 5;
const OP_EXPIRE_DELETE = 6;
const OP_OPEN_SESSION = 7;

const FLAG_KEEP_TTL = 1;
const FLAG_NX = 2;
const FLAG_XX = 4;

/**
 * One raft log entry of a cache shard: the leader's clock when it proposed (`at`, which
 * supplies `createdAt` and the deduplication table's notion of time) and a batch of commands
 * applied in order. Evictions that make room for a write come before it in the same batch.
 */
export interface EntryPayload {
  at: number;
  commands: Command[];
}

/** A decoded payload; a command that failed the structural checks is `null`. */
export type DecodedEntry =
  | { kind: 'ok'; at: number; commands: (Command | null)[] }
  | { kind: 'unsupported'; version: number }
  | { kind: 'malformed' };

export function encodeEntry(payload: EntryPayload): Uint8Array {
  const tuples = payload.commands.map(commandToTuple);
  const bytes = packr.pack([payload.at, tuples], RESERVE_START_SPACE | 1);
  bytes[0] = ENTRY_FORMAT_VERSION;
  return bytes;
}

/**
 * Never throws: every replica reaches the same verdict on the same bytes. With
 * `valuesAsViews`, values are views into `bytes`: only for a caller that copies them before
 * `bytes` may change or go (the store's apply).
 */
export function decodeEntry(bytes: Uint8Array, valuesAsViews = false): DecodedEntry {
  if (bytes.byteLength < 2) return { kind: 'malformed' };
  if (bytes[0] !== ENTRY_FORMAT_VERSION) return { kind: 'unsupported', version: bytes[0] };
  let body: unknown;
  try {
    body = (valuesAsViews ? viewingUnpackr : unpackr).unpack(plainView(bytes, 1));
  } catch {
    return { kind: 'malformed' };
  }
  if (!Array.isArray(body) || body.length !== 2) return { kind: 'malformed' };
  const [at, tuples] = body;
  if (!isTime(at) || !Array.isArray(tuples)) return { kind: 'malformed' };
  return { kind: 'ok', at, commands: tuples.map(tupleToCommand) };
}

/**
 * The bytes after `offset` as a plain Uint8Array, never a Buffer: msgpackr copies each value
 * with the input's own `slice`, and Buffer's runs a constructor several times slower per
 * value. Decoded values are therefore Uint8Arrays.
 */
function plainView(bytes: Uint8Array, offset: number): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset + offset, bytes.byteLength - offset);
}

/** Fields after the op code that every command but open-session starts with: its write id. */
const ID_FIELDS = 4;

function commandToTuple(command: Command): unknown[] {
  if (command.op === 'open-session') return [OP_OPEN_SESSION, command.clientId];
  const { clientId, session, seq, lowestPending } = command;
  switch (command.op) {
    case 'set': {
      const flags =
        (command.keepTtl ? FLAG_KEEP_TTL : 0) |
        (command.condition === 'nx' ? FLAG_NX : command.condition === 'xx' ? FLAG_XX : 0);
      return [
        OP_SET,
        clientId,
        session,
        seq,
        lowestPending,
        command.key,
        command.value,
        command.expiresAt,
        flags,
        command.ifVersion,
      ];
    }
    case 'del':
      return [OP_DEL, clientId, session, seq, lowestPending, command.keys];
    case 'mset':
      return [
        OP_MSET,
        clientId,
        session,
        seq,
        lowestPending,
        command.keys,
        command.values,
        command.expiresAt,
      ];
    case 'expire':
      return [OP_EXPIRE, clientId, session, seq, lowestPending, command.key, command.expiresAt];
    case 'evict':
    case 'expire-delete':
      return [
        command.op === 'evict' ? OP_EVICT : OP_EXPIRE_DELETE,
        clientId,
        session,
        seq,
        lowestPending,
        command.key,
        command.version,
      ];
  }
}

// Structural checks only: enough that apply can trust every field's type. Limits (key and
// value sizes) were enforced before proposal and are not replicated decisions; the write
// id's rules are, since sessions rely on them (a seq within MAX_PENDING_SPAN of its lowest
// pending one bounds what a session holds).
function tupleToCommand(tuple: unknown): Command | null {
  if (!Array.isArray(tuple)) return null;
  const fields = tuple as unknown[];
  const op = fields[0];
  if (op === OP_OPEN_SESSION) {
    const clientId = fields[1];
    if (fields.length !== 2 || typeof clientId !== 'string' || clientId === '') return null;
    return { op: 'open-session', clientId };
  }
  const id = writeIdOf(fields);
  if (id === null) return null;
  const [key, value, expiresAt, flags, ifVersion] = fields.slice(1 + ID_FIELDS);
  const length = fields.length - 1 - ID_FIELDS;
  switch (op) {
    case OP_SET: {
      if (length !== 5 || !isKey(key) || !(value instanceof Uint8Array)) return null;
      if (!isTime(expiresAt) || !Number.isInteger(flags) || !isTime(ifVersion)) return null;
      const bits = flags as number;
      const condition: SetCondition = bits & FLAG_NX ? 'nx' : bits & FLAG_XX ? 'xx' : 'none';
      return {
        op: 'set',
        ...id,
        key,
        value,
        expiresAt,
        keepTtl: (bits & FLAG_KEEP_TTL) !== 0,
        condition,
        ifVersion,
      };
    }
    case OP_DEL: {
      if (length !== 1 || !isKeyList(key)) return null;
      return { op: 'del', ...id, keys: key };
    }
    case OP_MSET: {
      const [keys, values, expires] = [key, value, expiresAt];
      if (length !== 3 || !isKeyList(keys) || !Array.isArray(values) || !isTime(expires))
        return null;
      if (values.length !== keys.length || !values.every((v) => v instanceof Uint8Array))
        return null;
      if (new Set(keys).size !== keys.length) return null;
      return { op: 'mset', ...id, keys, values, expiresAt: expires };
    }
    case OP_EXPIRE: {
      if (length !== 2 || !isKey(key) || !isTime(value)) return null;
      return { op: 'expire', ...id, key, expiresAt: value };
    }
    case OP_EVICT:
    case OP_EXPIRE_DELETE: {
      if (length !== 2 || !isKey(key) || !isTime(value)) return null;
      const deleteOp = op === OP_EVICT ? 'evict' : 'expire-delete';
      return { op: deleteOp, ...id, key, version: value };
    }
    default:
      return null;
  }
}

/** The write id after the op code: none (session 0, every field empty) or a valid one. */
function writeIdOf(fields: unknown[]): WriteId | null {
  const [, clientId, session, seq, lowestPending] = fields;
  if (typeof clientId !== 'string' || !isTime(session) || !isTime(seq) || !isTime(lowestPending))
    return null;
  if (session === 0)
    return clientId === '' && seq === 0 && lowestPending === 0
      ? { clientId, session, seq, lowestPending }
      : null;
  if (clientId === '' || lowestPending < 1 || lowestPending > seq) return null;
  if (seq - lowestPending >= MAX_PENDING_SPAN) return null;
  return { clientId, session, seq, lowestPending };
}

function isKey(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function isKeyList(value: unknown): value is string[] {
  return Array.isArray(value) && value.length > 0 && value.every(isKey);
}

function isTime(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

// ---- Snapshot chunks: [format version][crc32 of the rest, big-endian][msgpack body].

const CHUNK_HEADER_BYTES = 5;

export function encodeChunk(body: unknown): Uint8Array {
  const bytes = packr.pack(body, RESERVE_START_SPACE | CHUNK_HEADER_BYTES);
  bytes[0] = SNAPSHOT_FORMAT_VERSION;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(1, crc32(bytes.subarray(CHUNK_HEADER_BYTES)));
  return bytes;
}

export type DecodedChunk =
  | { kind: 'ok'; body: unknown }
  | { kind: 'unsupported'; version: number }
  | { kind: 'corrupt'; reason: string };

export function decodeChunk(bytes: Uint8Array): DecodedChunk {
  if (bytes.byteLength <= CHUNK_HEADER_BYTES) return { kind: 'corrupt', reason: 'chunk too short' };
  if (bytes[0] !== SNAPSHOT_FORMAT_VERSION) return { kind: 'unsupported', version: bytes[0] };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const body = plainView(bytes, CHUNK_HEADER_BYTES);
  if (view.getUint32(1) !== crc32(body))
    return { kind: 'corrupt', reason: 'chunk checksum mismatch' };
  try {
    return { kind: 'ok', body: unpackr.unpack(body) };
  } catch (error) {
    return { kind: 'corrupt', reason: `chunk does not decode: ${(error as Error).message}` };
  }
}

/** Running checksum of a whole snapshot stream: fold each chunk's bytes in order. */
export function streamChecksum(previous: number, chunk: Uint8Array): number {
  return crc32(chunk, previous);
}
