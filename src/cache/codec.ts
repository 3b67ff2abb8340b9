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
import type { Command, SetCondition } from './commands.ts';

/** Version of the log-entry payload format (the first byte of every payload). */
export const ENTRY_FORMAT_VERSION = 1;
/** Version of the snapshot chunk format (the first byte of every chunk). */
export const SNAPSHOT_FORMAT_VERSION = 1;

const packr = newPackr();
const unpackr = newUnpackr();
const viewingUnpackr = newUnpackr(true);

const OP_SET = 1;
const OP_DEL = 2;
const OP_MSET = 3;
const OP_EXPIRE = 4;
const OP_EVICT = 5;
const OP_EXPIRE_DELETE = 6;

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

function commandToTuple(command: Command): unknown[] {
  const { clientId, seq } = command;
  switch (command.op) {
    case 'set': {
      const flags =
        (command.keepTtl ? FLAG_KEEP_TTL : 0) |
        (command.condition === 'nx' ? FLAG_NX : command.condition === 'xx' ? FLAG_XX : 0);
      return [
        OP_SET,
        clientId,
        seq,
        command.key,
        command.value,
        command.expiresAt,
        flags,
        command.ifVersion,
      ];
    }
    case 'del':
      return [OP_DEL, clientId, seq, command.keys];
    case 'mset':
      return [OP_MSET, clientId, seq, command.keys, command.values, command.expiresAt];
    case 'expire':
      return [OP_EXPIRE, clientId, seq, command.key, command.expiresAt];
    case 'evict':
    case 'expire-delete':
      return [
        command.op === 'evict' ? OP_EVICT : OP_EXPIRE_DELETE,
        clientId,
        seq,
        command.key,
        command.version,
      ];
  }
}

// Structural checks only: enough that apply can trust every field's type. Limits (key and
// value sizes) were enforced before proposal and are not replicated decisions.
function tupleToCommand(tuple: unknown): Command | null {
  if (!Array.isArray(tuple)) return null;
  const [op, clientId, seq] = tuple;
  if (typeof clientId !== 'string' || !Number.isSafeInteger(seq)) return null;
  switch (op) {
    case OP_SET: {
      const [, , , key, value, expiresAt, flags, ifVersion] = tuple;
      if (tuple.length !== 8 || !isKey(key) || !(value instanceof Uint8Array)) return null;
      if (!isTime(expiresAt) || !Number.isInteger(flags) || !isTime(ifVersion)) return null;
      const condition: SetCondition = flags & FLAG_NX ? 'nx' : flags & FLAG_XX ? 'xx' : 'none';
      return {
        op: 'set',
        clientId,
        seq,
        key,
        value,
        expiresAt,
        keepTtl: (flags & FLAG_KEEP_TTL) !== 0,
        condition,
        ifVersion,
      };
    }
    case OP_DEL: {
      const keys = tuple[3];
      if (tuple.length !== 4 || !isKeyList(keys)) return null;
      return { op: 'del', clientId, seq, keys };
    }
    case OP_MSET: {
      const [, , , keys, values, expiresAt] = tuple;
      if (tuple.length !== 6 || !isKeyList(keys) || !Array.isArray(values) || !isTime(expiresAt))
        return null;
      if (values.length !== keys.length || !values.every((v) => v instanceof Uint8Array))
        return null;
      if (new Set(keys).size !== keys.length) return null;
      return { op: 'mset', clientId, seq, keys, values, expiresAt };
    }
    case OP_EXPIRE: {
      const [, , , key, expiresAt] = tuple;
      if (tuple.length !== 5 || !isKey(key) || !isTime(expiresAt)) return null;
      return { op: 'expire', clientId, seq, key, expiresAt };
    }
    case OP_EVICT:
    case OP_EXPIRE_DELETE: {
      const [, , , key, version] = tuple;
      if (tuple.length !== 5 || !isKey(key) || !isTime(version)) return null;
      return { op: op === OP_EVICT ? 'evict' : 'expire-delete', clientId, seq, key, version };
    }
    default:
      return null;
  }
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
