// The client's side of a session: sequence numbers, the lowest one still pending, and the
// span a session allows, which makes a write beyond it wait for the oldest to settle.
import { describe, expect, it } from 'vitest';
import { DeadlineExceededError } from '../../src/client/errors.ts';
import { type OpenedSession, ShardSession, WriteIds } from '../../src/client/write-ids.ts';

describe('ShardSession', () => {
  it('numbers writes from 1 and reports the lowest still pending', async () => {
    const session = new ShardSession({ sessionId: 7, maxPendingSpan: 10 });
    const [a, b, c] = [
      await session.take(Infinity),
      await session.take(Infinity),
      await session.take(Infinity),
    ];
    expect([a, b, c]).toEqual([1, 2, 3]);
    session.settle(2);
    expect(session.lowestPending).toBe(1);
    session.settle(1);
    expect(session.lowestPending).toBe(3);
    session.settle(3);
    expect(session.lowestPending).toBe(4);
    expect(session.wire('c', 5)).toEqual({
      client_id: 'c',
      session_id: 7,
      sequence: 5,
      lowest_pending: 4,
    });
  });

  it('makes a write beyond the span wait for the oldest pending one, until its deadline', async () => {
    const session = new ShardSession({ sessionId: 1, maxPendingSpan: 2 });
    await session.take(Infinity);
    await session.take(Infinity);
    const third = session.take(performance.now() + 5_000);
    let taken: number | undefined;
    void third.then((seq) => {
      taken = seq;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(taken).toBeUndefined();
    session.settle(2); // the oldest still holds the window open
    await new Promise((resolve) => setImmediate(resolve));
    expect(taken).toBeUndefined();
    session.settle(1);
    expect(await third).toBe(3);
    expect(await session.take(Infinity)).toBe(4); // 3 and 4 pending: full again
    await expect(session.take(performance.now() + 20)).rejects.toBeInstanceOf(
      DeadlineExceededError,
    );
  });
});

describe('WriteIds', () => {
  it('shares one opening among writes issued together, and opens anew after an expiry or a failure', async () => {
    const opened: number[] = [];
    let fail = false;
    const ids = new WriteIds(async (shardId): Promise<OpenedSession> => {
      if (fail) throw new Error('no leader');
      opened.push(shardId);
      return { sessionId: opened.length, maxPendingSpan: 100 };
    }, 'c');
    const slots = await Promise.all([
      ids.take(1, Infinity),
      ids.take(1, Infinity),
      ids.take(2, Infinity),
    ]);
    expect(opened).toEqual([1, 2]);
    expect(slots.map((s) => [s.session.id, s.seq])).toEqual([
      [1, 1],
      [1, 2],
      [2, 1],
    ]);
    ids.expired(1, slots[0]?.session as ShardSession);
    fail = true;
    await expect(ids.take(1, Infinity)).rejects.toThrow('no leader');
    fail = false;
    const again = await ids.take(1, Infinity);
    expect([again.session.id, again.seq]).toEqual([3, 1]);
    expect((await ids.take(2, Infinity)).session.id).toBe(2);
  });
});
