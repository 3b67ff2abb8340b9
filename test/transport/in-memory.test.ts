import { describe, expect, it } from 'vitest';
import { message } from '../../src/raft/types.ts';
import { InMemoryNetwork } from '../../src/transport/in-memory.ts';
import type { ShardMessage, SnapshotTransfer } from '../../src/transport/transport.ts';

const batch = (shardId: number): ShardMessage[] => [
  { shardId, message: message({ type: 'heartbeat', from: 1, to: 2, term: 1 }) },
];
const turn = () => new Promise((resolve) => setImmediate(resolve));

async function* chunksOf(parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* parts;
}

function transfer(parts: Uint8Array[]): SnapshotTransfer {
  const snapshot = { index: 5, term: 1, conf: { voters: [1, 2], learners: [] } };
  return {
    shardId: 7,
    message: message({ type: 'snap', from: 1, to: 2, term: 1, snapshot }),
    snapshot,
    chunks: chunksOf(parts),
  };
}

describe('in-memory peer transport', () => {
  it('delivers on a later turn, never inside send', async () => {
    const network = new InMemoryNetwork();
    const a = network.connect('a');
    const b = network.connect('b');
    const received: number[] = [];
    b.onReceive((from, got) => {
      expect(from).toBe('a');
      received.push(got[0].shardId);
    });
    a.send('b', batch(1));
    a.send('b', batch(2));
    expect(received).toEqual([]);
    await turn();
    expect(received).toEqual([1, 2]);
  });

  it('drops batches over the queue bound and reports the peer unreachable', async () => {
    const network = new InMemoryNetwork({ maxQueuedBatches: 2 });
    const a = network.connect('a');
    const b = network.connect('b');
    const received: number[] = [];
    const unreachable: [string, readonly number[]][] = [];
    b.onReceive((_from, got) => received.push(got[0].shardId));
    a.onUnreachable((peer, shardIds) => unreachable.push([peer, shardIds]));
    for (const shardId of [1, 2, 3, 4]) a.send('b', batch(shardId));
    await turn();
    await turn();
    expect(received).toEqual([1, 2]);
    expect(unreachable).toEqual([
      ['b', [3]],
      ['b', [4]],
    ]);
  });

  it('loses what crosses a cut link, one way or both, until healed', async () => {
    const network = new InMemoryNetwork();
    const a = network.connect('a');
    const b = network.connect('b');
    const atA: number[] = [];
    const atB: number[] = [];
    a.onReceive((_from, got) => atA.push(got[0].shardId));
    b.onReceive((_from, got) => atB.push(got[0].shardId));
    network.cut('a', 'b');
    a.send('b', batch(1));
    b.send('a', batch(2));
    await turn();
    expect([atA, atB]).toEqual([[2], []]);
    network.heal('a', 'b');
    a.send('b', batch(3));
    // A batch queued before the link is cut is lost with it.
    b.send('a', batch(4));
    network.cut('b', 'a');
    await turn();
    expect([atA, atB]).toEqual([[2], [3]]);
    network.isolate('a');
    a.send('b', batch(6));
    await turn();
    expect(atB).toEqual([3]);
    network.healAll();
    network.setDropRate(1);
    a.send('b', batch(5));
    await turn();
    expect(atB).toEqual([3]);
  });

  it('streams a snapshot chunk by chunk, and fails it when the link is cut midway', async () => {
    const network = new InMemoryNetwork();
    const a = network.connect('a');
    const b = network.connect('b');
    const got: number[] = [];
    b.onSnapshot(async (_from, incoming) => {
      for await (const chunk of incoming.chunks) {
        got.push(chunk[0]);
        if (chunk[0] === 2) network.partition('a', 'b');
      }
      expect(incoming.message.type).toBe('snap');
    });
    const parts = [1, 2, 3].map((n) => Uint8Array.of(n));
    await expect(a.sendSnapshot('b', transfer(parts.slice(0, 1)))).resolves.toBeUndefined();
    await expect(a.sendSnapshot('b', transfer(parts))).rejects.toMatchObject({ code: 'LINK_DOWN' });
    expect(got).toEqual([1, 1, 2]);
    await expect(a.sendSnapshot('b', transfer(parts))).rejects.toMatchObject({ code: 'LINK_DOWN' });
  });
});
