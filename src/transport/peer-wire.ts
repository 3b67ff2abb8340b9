// The peer links' wire: after an 8-byte preface that tells a peer connection from an HTTP/2
// one on the node's single port, length-prefixed frames, each a kind byte and a payload.

import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';

/** The first bytes of a peer connection (an HTTP/2 connection starts `PRI * HT`). */
export const PEER_PREFACE = Buffer.from('RCPEER/1', 'latin1');

export const FrameKind = {
  /** Client → server, first: `{ cluster, node, purpose }` as JSON. */
  hello: 1,
  /** Raft messages of any shards (peer-codec's frame). */
  batch: 2,
  ping: 3,
  pong: 4,
  /** A snapshot transfer's data. */
  chunk: 5,
  /** A snapshot transfer's end. */
  end: 6,
  /** Server → client: the snapshot is installed. */
  ok: 7,
  /** Server → client, then it closes: why (UTF-8). */
  refused: 8,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** What a link is for: raft batches one way, or one snapshot transfer. */
export type LinkPurpose = 'raft' | 'snapshot';

export interface Hello {
  readonly cluster: string;
  readonly node: string;
  readonly purpose: LinkPurpose;
}

/** Snapshot chunks and large batches stay well under this. */
export const MAX_FRAME_BYTES = 64 << 20;
/** A hello is small: a connection not yet known to be a peer may buffer no more. */
export const MAX_HELLO_BYTES = 4 << 10;

/** A peer broke the wire's rules: the connection is closed. */
export class PeerWireError extends Error {
  override name = 'PeerWireError';
}

const HEADER_BYTES = 5;

/** The bytes before a frame's payload: its length (the kind byte and the payload), its kind. */
export function frameHeader(kind: FrameKind, payloadBytes: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(payloadBytes + 1, 0);
  header[4] = kind;
  return header;
}

/** Writes one frame; false when the socket's buffer is full (wait for `drain`). */
export function writeFrame(socket: Socket, kind: FrameKind, payload: Uint8Array): boolean {
  // One write: copying the payload costs less than corking a writev of two parts.
  return socket.write(Buffer.concat([frameHeader(kind, payload.length), payload]));
}

export function writeHello(socket: Socket, hello: Hello): void {
  socket.write(PEER_PREFACE);
  writeFrame(socket, FrameKind.hello, Buffer.from(JSON.stringify(hello)));
}

/** Parses a hello frame's payload; throws `PeerWireError` when it is not one. */
export function parseHello(payload: Uint8Array): Hello {
  let hello: Partial<Hello> | null;
  try {
    hello = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    throw new PeerWireError('the hello frame is not JSON');
  }
  // `null` is JSON too.
  const { cluster, node, purpose } = hello ?? {};
  if (
    typeof cluster !== 'string' ||
    typeof node !== 'string' ||
    (purpose !== 'raft' && purpose !== 'snapshot')
  ) {
    throw new PeerWireError('the hello frame needs cluster, node and purpose');
  }
  return { cluster, node, purpose };
}

/**
 * Splits a byte stream into frames. A frame within one chunk is a view of that chunk, so a
 * payload kept after the handler returns keeps its chunk alive (socket reads are sized to what
 * was read). A frame spread over chunks is joined once, when its last byte arrives.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  readonly #onFrame: (kind: number, payload: Buffer) => void;
  /** The largest payload accepted now (a connection raises it once it said who it is). */
  maxPayloadBytes = MAX_FRAME_BYTES;

  constructor(onFrame: (kind: number, payload: Buffer) => void) {
    this.#onFrame = onFrame;
  }

  /** Feeds bytes; calls the handler for each whole frame. Throws `PeerWireError` on a bad length. */
  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    while (this.#buffered >= HEADER_BYTES) {
      const length = this.#head(HEADER_BYTES).readUInt32BE(0);
      if (length < 1 || length > this.maxPayloadBytes + 1) {
        throw new PeerWireError(`a frame of ${length} bytes is out of bounds`);
      }
      const end = 4 + length;
      if (this.#buffered < end) return;
      const bytes = this.#head(end);
      this.#consume(end);
      this.#onFrame(bytes[4], bytes.subarray(HEADER_BYTES, end));
    }
  }

  /** The first chunk, joined with the next ones until it holds at least `n` bytes. */
  #head(n: number): Buffer {
    if (this.#chunks[0].length < n) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0];
  }

  #consume(n: number): void {
    const first = this.#chunks[0];
    if (first.length === n) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(n);
    this.#buffered -= n;
  }
}
