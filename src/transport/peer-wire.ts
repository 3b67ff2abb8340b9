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

/**
 * The largest payload of each frame kind. A raft batch frame is cut by its sender to a few
 * MiB (one append carries at most about 1 MiB of entries, one entry always); a snapshot chunk
 * is about 1 MiB of entries, but the header chunk carries the shard's deduplication table.
 * The control frames carry nothing, or a short reason.
 */
export const MAX_HELLO_BYTES = 4 << 10;
export const MAX_BATCH_FRAME_BYTES = 16 << 20;
export const MAX_CHUNK_FRAME_BYTES = 16 << 20;
export const MAX_REASON_BYTES = 4 << 10;
/** No frame of any kind is larger. */
export const MAX_FRAME_BYTES = Math.max(MAX_BATCH_FRAME_BYTES, MAX_CHUNK_FRAME_BYTES);

/** The frame kinds a connection may receive now, each with its largest payload. */
export type FrameLimits = ReadonlyMap<number, number>;

/** What each side of each link may receive. */
export const LINK_FRAME_LIMITS = {
  /** A connection that has not said who it is yet. */
  beforeHello: new Map<number, number>([[FrameKind.hello, MAX_HELLO_BYTES]]),
  /** The accepting side of a raft link. */
  raftIn: new Map<number, number>([
    [FrameKind.batch, MAX_BATCH_FRAME_BYTES],
    [FrameKind.ping, 0],
  ]),
  /** The accepting side of a snapshot transfer (its first frame is a batch: the `snap`). */
  snapshotIn: new Map<number, number>([
    [FrameKind.batch, MAX_BATCH_FRAME_BYTES],
    [FrameKind.chunk, MAX_CHUNK_FRAME_BYTES],
    [FrameKind.end, 0],
    [FrameKind.ping, 0],
  ]),
  /** The connecting side of either: answers only. */
  out: new Map<number, number>([
    [FrameKind.pong, 0],
    [FrameKind.ok, 0],
    [FrameKind.refused, MAX_REASON_BYTES],
  ]),
} satisfies Record<string, FrameLimits>;

/**
 * Bytes of frames being read, shared by every connection of a transport: a frame in progress
 * holds what has arrived of it, and past the budget the connection reading it is closed.
 */
export class ReadBudget {
  readonly maxBytes: number;
  usedBytes = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }
}

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

/** A frame kind's payload grows in steps from this size, as its bytes arrive. */
const FIRST_BUFFER_BYTES = 64 << 10;

/**
 * Splits a byte stream into frames. A frame within one chunk is a view of that chunk (the
 * hot path copies nothing); a frame spread over chunks is copied as its bytes arrive into a
 * buffer that grows up to its length, so a peer that declares a large frame holds only what
 * it really sent. A length past the kind's limit, or a kind the connection may not receive,
 * is refused as soon as the header is in.
 */
export class FrameReader {
  readonly #onFrame: (kind: number, payload: Buffer) => void;
  readonly #budget: ReadBudget | undefined;
  #limits: FrameLimits | undefined;
  readonly #header = Buffer.alloc(HEADER_BYTES);
  #headerFilled = 0;
  #kind = 0;
  #payloadBytes = 0;
  #body: Buffer | undefined;
  #bodyFilled = 0;

  /** `limits` undefined: any kind, up to `MAX_FRAME_BYTES`. */
  constructor(
    onFrame: (kind: number, payload: Buffer) => void,
    limits?: FrameLimits,
    budget?: ReadBudget,
  ) {
    this.#onFrame = onFrame;
    this.#limits = limits;
    this.#budget = budget;
  }

  /** What the connection may receive from the next frame on (it said who it is, say). */
  set limits(limits: FrameLimits) {
    this.#limits = limits;
  }

  /** Bytes held for a frame not yet complete. */
  get bufferedBytes(): number {
    return this.#body?.length ?? 0;
  }

  /** Feeds bytes; calls the handler for each whole frame. Throws `PeerWireError` on a bad frame. */
  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#body !== undefined) {
        offset = this.#fill(chunk, offset);
        continue;
      }
      if (this.#headerFilled === 0 && chunk.length - offset >= HEADER_BYTES) {
        const payloadBytes = this.#check(chunk.readUInt32BE(offset), chunk[offset + 4] as number);
        const start = offset + HEADER_BYTES;
        const end = start + payloadBytes;
        if (end <= chunk.length) {
          offset = end;
          this.#onFrame(this.#kind, chunk.subarray(start, end));
        } else {
          offset = start;
          this.#begin(payloadBytes);
        }
        continue;
      }
      const n = Math.min(HEADER_BYTES - this.#headerFilled, chunk.length - offset);
      chunk.copy(this.#header, this.#headerFilled, offset, offset + n);
      this.#headerFilled += n;
      offset += n;
      if (this.#headerFilled < HEADER_BYTES) return;
      this.#headerFilled = 0;
      const payloadBytes = this.#check(this.#header.readUInt32BE(0), this.#header[4] as number);
      if (payloadBytes === 0) this.#onFrame(this.#kind, Buffer.alloc(0));
      else this.#begin(payloadBytes);
    }
  }

  /** Drops a frame in progress (its connection closed): its bytes go back to the budget. */
  clear(): void {
    this.#release();
    this.#headerFilled = 0;
  }

  /** Checks a header; returns the payload's length. */
  #check(length: number, kind: number): number {
    const payloadBytes = length - 1;
    const limit = this.#limits === undefined ? MAX_FRAME_BYTES : this.#limits.get(kind);
    if (limit === undefined) throw new PeerWireError(`frame kind ${kind} is not expected here`);
    if (length < 1 || payloadBytes > limit) {
      throw new PeerWireError(`a frame of ${length} bytes is out of bounds (kind ${kind})`);
    }
    this.#kind = kind;
    return payloadBytes;
  }

  #begin(payloadBytes: number): void {
    this.#payloadBytes = payloadBytes;
    this.#bodyFilled = 0;
    this.#body = this.#allocate(Math.min(payloadBytes, FIRST_BUFFER_BYTES), undefined);
  }

  /** Copies what `chunk` holds of the frame in progress; returns the offset after it. */
  #fill(chunk: Buffer, offset: number): number {
    let body = this.#body as Buffer;
    const n = Math.min(this.#payloadBytes - this.#bodyFilled, chunk.length - offset);
    if (this.#bodyFilled + n > body.length) {
      const size = Math.min(this.#payloadBytes, Math.max(body.length * 2, this.#bodyFilled + n));
      body = this.#allocate(size, body);
      this.#body = body;
    }
    chunk.copy(body, this.#bodyFilled, offset, offset + n);
    this.#bodyFilled += n;
    if (this.#bodyFilled === this.#payloadBytes) {
      this.#release();
      this.#onFrame(this.#kind, body);
    }
    return offset + n;
  }

  /** A buffer of `size` bytes holding what `previous` held, charged to the budget. */
  #allocate(size: number, previous: Buffer | undefined): Buffer {
    const budget = this.#budget;
    const growth = size - (previous?.length ?? 0);
    if (budget !== undefined) {
      if (budget.usedBytes + growth > budget.maxBytes) {
        throw new PeerWireError(`frames being read would hold over ${budget.maxBytes} bytes`);
      }
      budget.usedBytes += growth;
    }
    const body = Buffer.allocUnsafe(size);
    previous?.copy(body, 0, 0, this.#bodyFilled);
    return body;
  }

  #release(): void {
    if (this.#budget !== undefined && this.#body !== undefined)
      this.#budget.usedBytes -= this.#body.length;
    this.#body = undefined;
    this.#bodyFilled = 0;
  }
}
