import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FrameKind,
  FrameReader,
  frameHeader,
  MAX_FRAME_BYTES,
  PeerWireError,
  parseHello,
  ReadBudget,
} from '../../src/transport/peer-wire.ts';

interface Frame {
  kind: number;
  payload: Buffer;
}

/** The frames as a peer writes them, one after the other. */
function frameBytes(frames: readonly Frame[]): Buffer {
  return Buffer.concat(
    frames.flatMap(({ kind, payload }) => [
      frameHeader(kind as FrameKind, payload.length),
      payload,
    ]),
  );
}

/** Feeds `chunks` to a reader; the frames it yields, payloads copied. */
function readAll(chunks: readonly Buffer[]): Frame[] {
  const frames: Frame[] = [];
  const reader = new FrameReader((kind, payload) =>
    frames.push({ kind, payload: Buffer.from(payload) }),
  );
  for (const chunk of chunks) reader.push(chunk);
  return frames;
}

/** `bytes` cut at the given offsets (taken modulo its length), or into single bytes. */
function split(bytes: Buffer, cuts: readonly number[] | 'single bytes'): Buffer[] {
  const offsets =
    cuts === 'single bytes'
      ? Array.from({ length: bytes.length }, (_, i) => i)
      : [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((x, y) => x - y);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const offset of [...offsets, bytes.length]) {
    if (offset > from) chunks.push(bytes.subarray(from, offset));
    from = Math.max(from, offset);
  }
  return chunks;
}

const frame = fc.record({
  kind: fc.integer({ min: 1, max: 8 }),
  payload: fc.oneof(
    fc.constant(Buffer.alloc(0)),
    fc.uint8Array({ maxLength: 3_000 }).map((bytes) => Buffer.from(bytes)),
  ),
});
const cuts = fc.oneof(fc.constant('single bytes' as const), fc.array(fc.nat(), { maxLength: 30 }));

/** A header claiming `length` bytes (the kind byte and the payload) follow. */
function lengthHeader(length: number): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(length, 0);
  header[4] = 2;
  return header;
}

describe('peer wire', () => {
  it('property: frames read back exactly and in order, however the bytes are split', () => {
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 12 }), cuts, (frames, at) => {
        const bytes = frameBytes(frames);
        expect(readAll(split(bytes, at))).toEqual(frames);
      }),
    );
  });

  it('holds back a frame until its last byte arrives', () => {
    const bytes = frameBytes([{ kind: 5, payload: Buffer.from('abc') }]);
    const frames: number[] = [];
    const reader = new FrameReader((kind) => frames.push(kind));
    reader.push(bytes.subarray(0, bytes.length - 1));
    expect(frames).toEqual([]);
    reader.push(bytes.subarray(bytes.length - 1));
    expect(frames).toEqual([5]);
  });

  it('refuses a length of 0 or past the largest frame, as soon as the header is in', () => {
    for (const length of [0, MAX_FRAME_BYTES + 2, 0xffff_ffff]) {
      const reader = new FrameReader(() => {});
      expect(() => reader.push(lengthHeader(length))).toThrow(PeerWireError);
    }
    // The largest frame's header is taken: the reader waits for its payload.
    expect(() => new FrameReader(() => {}).push(lengthHeader(MAX_FRAME_BYTES + 1))).not.toThrow();
  });

  it('takes only the kinds it is given, each up to its limit, judged on the header alone', () => {
    const limits = new Map([
      [FrameKind.batch, 100],
      [FrameKind.ping, 0],
    ]);
    const header = (kind: number, payloadBytes: number) =>
      frameHeader(kind as FrameKind, payloadBytes);
    expect(() => new FrameReader(() => {}, limits).push(header(FrameKind.chunk, 1))).toThrow(
      /kind 5 is not expected/,
    );
    expect(() => new FrameReader(() => {}, limits).push(header(FrameKind.ping, 1))).toThrow(
      PeerWireError,
    );
    expect(() => new FrameReader(() => {}, limits).push(header(FrameKind.batch, 101))).toThrow(
      /out of bounds/,
    );
    const frames: number[] = [];
    new FrameReader((kind) => frames.push(kind), limits).push(
      frameBytes([
        { kind: FrameKind.batch, payload: Buffer.alloc(100) },
        { kind: FrameKind.ping, payload: Buffer.alloc(0) },
      ]),
    );
    expect(frames).toEqual([FrameKind.batch, FrameKind.ping]);
  });

  it('holds what arrived of a frame, not what its header declares, and counts it in a budget', () => {
    const budget = new ReadBudget(8 << 20);
    const payload = Buffer.alloc(4 << 20, 1);
    const bytes = frameBytes([{ kind: FrameKind.chunk, payload }]);
    const got: Buffer[] = [];
    const reader = new FrameReader((_, p) => got.push(p), undefined, budget);
    let fed = 0;
    for (const chunk of split(
      bytes,
      Array.from({ length: 64 }, (_, i) => i * (bytes.length >> 6)),
    )) {
      reader.push(chunk);
      fed += chunk.length;
      if (got.length > 0) break;
      expect(reader.bufferedBytes).toBeLessThanOrEqual(Math.max(2 * fed, 64 << 10));
      expect(budget.usedBytes).toBe(reader.bufferedBytes);
    }
    expect(got[0]?.equals(payload)).toBe(true);
    expect(budget.usedBytes).toBe(0);
    // A frame cut off midway gives its bytes back when the reader is cleared.
    const partial = new FrameReader(() => {}, undefined, budget);
    partial.push(bytes.subarray(0, 1 << 20));
    expect(budget.usedBytes).toBeGreaterThan(0);
    partial.clear();
    expect(budget.usedBytes).toBe(0);
    // Past the budget, the frame is refused.
    const small = new FrameReader(() => {}, undefined, new ReadBudget(1 << 20));
    expect(() => small.push(bytes.subarray(0, 2 << 20))).toThrow(/would hold over/);
  });

  it('parses a hello, and refuses one that is not JSON or lacks a field', () => {
    const hello = { cluster: 'c1', node: 'a', purpose: 'raft' };
    expect(parseHello(Buffer.from(JSON.stringify(hello)))).toEqual(hello);
    const bad = [
      '{not json',
      '',
      'null',
      '"a string"',
      JSON.stringify({ node: 'a', purpose: 'raft' }),
      JSON.stringify({ cluster: 'c1', purpose: 'raft' }),
      JSON.stringify({ cluster: 'c1', node: 'a' }),
      JSON.stringify({ cluster: 'c1', node: 'a', purpose: 'gossip' }),
      JSON.stringify({ cluster: 7, node: 'a', purpose: 'raft' }),
    ];
    for (const text of bad) {
      expect(() => parseHello(Buffer.from(text)), text).toThrow(PeerWireError);
    }
  });
});
