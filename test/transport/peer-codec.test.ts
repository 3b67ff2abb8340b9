import fc from 'fast-check';
import { isNativeAccelerationEnabled } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { type Entry, type MessageType, message } from '../../src/raft/types.ts';
import {
  decodeFrame,
  encodeFrame,
  PEER_FRAME_VERSION,
  PeerFrameError,
} from '../../src/transport/peer-codec.ts';
import type { ShardMessage } from '../../src/transport/transport.ts';

const types: MessageType[] = [
  'app',
  'appResp',
  'heartbeat',
  'heartbeatResp',
  'vote',
  'voteResp',
  'preVote',
  'snap',
  'readIndex',
  'readIndexResp',
  'prop',
  'timeoutNow',
];
const id = fc.integer({ min: 1, max: 2 ** 31 });
const index = fc.nat({ max: 2 ** 40 });
const entry = fc.record({
  term: index,
  index,
  type: fc.constantFrom<Entry['type']>('normal', 'conf'),
  data: fc.uint8Array({ maxLength: 64 }),
});
const shardMessage = fc
  .record({
    shardId: fc.nat({ max: 65535 }),
    type: fc.constantFrom(...types),
    from: id,
    to: id,
    term: index,
    logTerm: index,
    index,
    commit: index,
    reject: fc.boolean(),
    rejectHint: index,
    context: index,
    entries: fc.array(entry, { maxLength: 4 }),
    snapshot: fc.option(
      fc.record({
        index,
        term: index,
        conf: fc.record({
          voters: fc.array(id, { maxLength: 5 }),
          learners: fc.array(id, { maxLength: 2 }),
        }),
      }),
      { nil: undefined },
    ),
  })
  .map(({ shardId, ...fields }): ShardMessage => ({ shardId, message: message(fields) }));

describe('peer frames', () => {
  it('msgpackr runs with its native extension', () => {
    expect(isNativeAccelerationEnabled).toBe(true);
  });

  it('property: a batch decodes to exactly the messages encoded', () => {
    fc.assert(
      fc.property(fc.array(shardMessage, { maxLength: 8 }), (batch) => {
        expect(decodeFrame(encodeFrame(batch))).toEqual(batch);
      }),
    );
  });

  it('decoded entry data owns its memory: a kept entry does not pin the frame', () => {
    const data = new Uint8Array(1000).fill(7);
    const frame = encodeFrame([
      {
        shardId: 1,
        message: message({ type: 'app', entries: [{ term: 1, index: 1, type: 'normal', data }] }),
      },
    ]);
    const [decoded] = decodeFrame(frame);
    expect(decoded.message.entries[0].data).toEqual(data);
    expect(decoded.message.entries[0].data.buffer).not.toBe(frame.buffer);
  });

  it('refuses a frame of another version, or no frame at all, with a typed error', () => {
    const frame = encodeFrame([]);
    expect(frame[0]).toBe(PEER_FRAME_VERSION);
    const newer = frame.slice();
    newer[0] = PEER_FRAME_VERSION + 1;
    expect(() => decodeFrame(newer)).toThrow(PeerFrameError);
    expect(() => decodeFrame(new Uint8Array([PEER_FRAME_VERSION, 0xc1]))).toThrow(PeerFrameError);
    expect(() => decodeFrame(new Uint8Array(0))).toThrow(PeerFrameError);
  });
});
