// Peer frames: a batch of raft messages of many shards, as bytes on a peer link. The first
// byte is the frame format version; a frame of an unknown version is refused, never guessed.
// A message travels as a tuple (field order fixed here) rather than a map: smaller and faster.
import { newPackr, newUnpackr } from '../codec/msgpack.ts';
import {
  type ConfState,
  type Entry,
  type EntryType,
  MESSAGE_TYPES,
  type Message,
  message,
  type SnapshotMeta,
} from '../raft/types.ts';
import type { ShardMessage } from './transport.ts';

export const PEER_FRAME_VERSION = 1;

/** A frame this build cannot read: another version, or not a frame at all. */
export class PeerFrameError extends Error {
  override name = 'PeerFrameError';
  readonly code = 'BAD_PEER_FRAME';
}

const packr = newPackr();
const unpackr = newUnpackr();

// Message types by number (their place in MESSAGE_TYPES), so a frame does not spell them out.
const TYPE_CODES = new Map(MESSAGE_TYPES.map((type, code) => [type, code]));
const ENTRY_TYPES: readonly EntryType[] = ['normal', 'conf'];

type EntryTuple = [term: number, index: number, type: number, data: Uint8Array];
type SnapshotTuple = [index: number, term: number, voters: number[], learners: number[]];
type MessageTuple = [
  shardId: number,
  type: number,
  from: number,
  to: number,
  term: number,
  logTerm: number,
  index: number,
  commit: number,
  reject: boolean,
  rejectHint: number,
  context: number,
  entries: EntryTuple[],
  snapshot: SnapshotTuple | null,
];

export function encodeFrame(batch: readonly ShardMessage[]): Uint8Array {
  const tuples: MessageTuple[] = batch.map(({ shardId, message: m }) => [
    shardId,
    TYPE_CODES.get(m.type) as number,
    m.from,
    m.to,
    m.term,
    m.logTerm,
    m.index,
    m.commit,
    m.reject,
    m.rejectHint,
    m.context,
    m.entries.map((e): EntryTuple => [e.term, e.index, e.type === 'conf' ? 1 : 0, e.data]),
    m.snapshot
      ? [
          m.snapshot.index,
          m.snapshot.term,
          [...m.snapshot.conf.voters],
          [...m.snapshot.conf.learners],
        ]
      : null,
  ]);
  const body = packr.pack(tuples);
  const frame = new Uint8Array(body.length + 1);
  frame[0] = PEER_FRAME_VERSION;
  frame.set(body, 1);
  return frame;
}

/** The most messages one frame may hold. */
export const MAX_MESSAGES_PER_FRAME = 1 << 16;

/**
 * The messages of a frame. A frame that is not a list of message tuples (another version,
 * undecodable bytes, a field of the wrong kind where the tuple's shape depends on it) is
 * refused whole with `PeerFrameError`; the values inside well-formed tuples are for
 * `messageProblem` to judge.
 */
export function decodeFrame(frame: Uint8Array): ShardMessage[] {
  if (frame.length === 0 || frame[0] !== PEER_FRAME_VERSION) {
    throw new PeerFrameError(`peer frame version ${frame[0]} is not ${PEER_FRAME_VERSION}`);
  }
  let tuples: unknown;
  try {
    tuples = unpackr.unpack(frame.subarray(1));
  } catch (error) {
    throw new PeerFrameError(`undecodable peer frame: ${(error as Error).message}`);
  }
  if (!Array.isArray(tuples)) throw new PeerFrameError('a peer frame holds a list of messages');
  if (tuples.length > MAX_MESSAGES_PER_FRAME)
    throw new PeerFrameError(`a peer frame of ${tuples.length} messages`);
  return tuples.map(toShardMessage);
}

function toShardMessage(t: unknown): ShardMessage {
  if (!Array.isArray(t) || t.length !== 13) {
    throw new PeerFrameError('malformed message in a peer frame');
  }
  const tuple = t as MessageTuple;
  const code = tuple[1];
  // An index into the list, never a property name: a code `constructor` is no type.
  const type = Number.isInteger(code) ? MESSAGE_TYPES[code] : undefined;
  if (type === undefined) throw new PeerFrameError(`unknown message type ${String(code)}`);
  if (!Array.isArray(tuple[11])) throw new PeerFrameError('message entries are not a list');
  const entries = tuple[11].map((e: unknown): Entry => {
    if (!Array.isArray(e) || e.length !== 4) throw new PeerFrameError('malformed entry');
    const [term, index, entryType, data] = e as EntryTuple;
    const kind = Number.isInteger(entryType) ? ENTRY_TYPES[entryType] : undefined;
    if (kind === undefined)
      throw new PeerFrameError(`unknown entry type ${String(entryType)} in a peer frame`);
    if (!(data instanceof Uint8Array)) throw new PeerFrameError('an entry without bytes');
    // msgpackr hands out Buffers; a plain view keeps both transports' entries alike.
    return {
      term,
      index,
      type: kind,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    };
  });
  const meta = tuple[12];
  if (meta !== null && (!Array.isArray(meta) || meta.length !== 4))
    throw new PeerFrameError('malformed snapshot in a peer frame');
  const snapshot: SnapshotMeta | undefined = meta
    ? {
        index: meta[0],
        term: meta[1],
        conf: { voters: meta[2], learners: meta[3] } satisfies ConfState,
      }
    : undefined;
  const m: Message = message({
    type,
    from: tuple[2],
    to: tuple[3],
    term: tuple[4],
    logTerm: tuple[5],
    index: tuple[6],
    commit: tuple[7],
    reject: tuple[8],
    rejectHint: tuple[9],
    context: tuple[10],
    entries,
    snapshot,
  });
  return { shardId: tuple[0], message: m };
}

/** About the bytes a message takes in a frame: its entries' data, and a little for the rest. */
function estimatedBytes(m: Message): number {
  let bytes = 64;
  for (const entry of m.entries) bytes += entry.data.byteLength + 24;
  return bytes;
}

/**
 * `batch` in runs of at most about `targetBytes` each (a larger message goes alone), so
 * that every frame stays well within what the receiver takes. Most batches stay whole.
 */
export function splitBatch(
  batch: readonly ShardMessage[],
  targetBytes: number,
): (readonly ShardMessage[])[] {
  const parts: ShardMessage[][] = [];
  let part: ShardMessage[] = [];
  let bytes = 0;
  for (const item of batch) {
    const size = estimatedBytes(item.message);
    if (part.length > 0 && bytes + size > targetBytes) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(item);
    bytes += size;
  }
  if (parts.length === 0) return [batch];
  parts.push(part);
  return parts;
}
