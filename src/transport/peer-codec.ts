// Peer frames: a batch of raft messages of many shards, as bytes on a peer link. The first
// byte is the frame format version; a frame of an unknown version is refused, never guessed.
// A message travels as a tuple (field order fixed here) rather than a map: smaller and faster.
import { newPackr, newUnpackr } from '../codec/msgpack.ts';
import type { ConfState } from '../raft/types.ts';
import {
  type Entry,
  type EntryType,
  type Message,
  type MessageType,
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

// Message types by number, so that a frame does not spell them out.
const MESSAGE_TYPES: readonly MessageType[] = [
  'hup',
  'beat',
  'prop',
  'app',
  'appResp',
  'heartbeat',
  'heartbeatResp',
  'vote',
  'voteResp',
  'preVote',
  'preVoteResp',
  'timeoutNow',
  'readIndex',
  'readLease',
  'readIndexResp',
  'snap',
];
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

export function decodeFrame(frame: Uint8Array): ShardMessage[] {
  if (frame.length === 0 || frame[0] !== PEER_FRAME_VERSION) {
    throw new PeerFrameError(`peer frame version ${frame[0]} is not ${PEER_FRAME_VERSION}`);
  }
  let tuples: MessageTuple[];
  try {
    tuples = unpackr.unpack(frame.subarray(1)) as MessageTuple[];
  } catch (error) {
    throw new PeerFrameError(`undecodable peer frame: ${(error as Error).message}`);
  }
  if (!Array.isArray(tuples)) throw new PeerFrameError('a peer frame holds a list of messages');
  return tuples.map(toShardMessage);
}

function toShardMessage(t: MessageTuple): ShardMessage {
  const type = MESSAGE_TYPES[t[1]];
  if (!Array.isArray(t) || t.length !== 13 || type === undefined) {
    throw new PeerFrameError('malformed message in a peer frame');
  }
  const entries = t[11].map(([term, index, entryType, data]): Entry => {
    const kind = ENTRY_TYPES[entryType];
    if (kind === undefined)
      throw new PeerFrameError(`unknown entry type ${entryType} in a peer frame`);
    // msgpackr hands out Buffers; a plain view keeps both transports' entries alike.
    return {
      term,
      index,
      type: kind,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    };
  });
  const snapshot: SnapshotMeta | undefined = t[12]
    ? {
        index: t[12][0],
        term: t[12][1],
        conf: { voters: t[12][2], learners: t[12][3] } satisfies ConfState,
      }
    : undefined;
  const m: Message = message({
    type,
    from: t[2],
    to: t[3],
    term: t[4],
    logTerm: t[5],
    index: t[6],
    commit: t[7],
    reject: t[8],
    rejectHint: t[9],
    context: t[10],
    entries,
    snapshot,
  });
  return { shardId: t[0], message: m };
}
