import { afterEach, describe, expect, it } from 'vitest';
import { message } from '../../src/raft/types.ts';
import { TcpPeerTransport } from '../../src/transport/tcp-peer-transport.ts';
import type { ShardMessage } from '../../src/transport/transport.ts';

const open: TcpPeerTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function start(node: string, peers: Map<string, string>, clusterId = 'c1', port = 0) {
  const transport = await TcpPeerTransport.listen(`127.0.0.1:${port}`, { node, clusterId, peers });
  open.push(transport);
  return transport;
}

function until<T>(check: () => T | undefined, ms = 3_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      const value = check();
      if (value !== undefined) resolve(value);
      else if (Date.now() - started > ms) reject(new Error(`not within ${ms} ms`));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

const batch: ShardMessage[] = [
  {
    shardId: 3,
    message: message({ type: 'heartbeat', from: 1, to: 2, term: 4, commit: 9, context: 2 }),
  },
  {
    shardId: 7,
    message: message({
      type: 'app',
      from: 1,
      to: 2,
      term: 4,
      index: 9,
      logTerm: 4,
      entries: [{ term: 4, index: 10, type: 'normal', data: new Uint8Array([1, 2, 3]) }],
    }),
  },
];

describe('TCP peer transport over loopback', () => {
  it('carries batches of shard messages from one node to another, naming the sender', async () => {
    const a = await start('a', new Map());
    const b = await start('b', new Map());
    a.setPeerAddresses(new Map([['b', `127.0.0.1:${b.port}`]]));
    const received: [string, readonly ShardMessage[]][] = [];
    b.onReceive((from, got) => received.push([from, got]));
    a.send('b', batch);
    a.send('b', batch.slice(0, 1));
    await until(() => (received.length === 2 ? true : undefined));
    expect(received).toEqual([
      ['a', batch],
      ['a', batch.slice(0, 1)],
    ]);
  });

  it('refuses a link from another cluster', async () => {
    const x = await start('x', new Map(), 'other-cluster');
    const b = await start('b', new Map());
    x.setPeerAddresses(new Map([['b', `127.0.0.1:${b.port}`]]));
    let received = 0;
    b.onReceive(() => received++);
    x.send('b', batch);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received).toBe(0);
  });

  it('streams a snapshot in chunks apart from raft traffic, and reports the outcome', async () => {
    const a = await start('a', new Map());
    const b = await start('b', new Map());
    a.setPeerAddresses(new Map([['b', `127.0.0.1:${b.port}`]]));
    const got: Uint8Array[] = [];
    b.onSnapshot(async (from, transfer) => {
      expect(from).toBe('a');
      expect(transfer.snapshot.index).toBe(40);
      for await (const chunk of transfer.chunks) got.push(chunk);
    });
    const snapshot = { index: 40, term: 3, conf: { voters: [1, 2, 3], learners: [] } };
    const chunks = [
      new Uint8Array(1 << 20).fill(1),
      new Uint8Array(1 << 20).fill(2),
      new Uint8Array([3]),
    ];
    await a.sendSnapshot('b', {
      shardId: 5,
      message: message({ type: 'snap', from: 1, to: 2, term: 3, snapshot }),
      snapshot,
      chunks: (async function* () {
        yield* chunks;
      })(),
    });
    expect(got.map((c) => c.length)).toEqual(chunks.map((c) => c.length));
    expect(Buffer.from(got[2])).toEqual(Buffer.from(chunks[2]));

    b.onSnapshot(async () => {
      throw new Error('disk full');
    });
    await expect(
      a.sendSnapshot('b', {
        shardId: 5,
        message: message({ type: 'snap', from: 1, to: 2, snapshot }),
        snapshot,
        chunks: (async function* () {})(),
      }),
    ).rejects.toThrow(/disk full/);
  });

  it('reports a peer that cannot be reached, instead of queueing without bound', async () => {
    const peers = new Map([['gone', '127.0.0.1:1']]);
    const a = await TcpPeerTransport.listen('127.0.0.1:0', {
      node: 'a',
      clusterId: 'c1',
      peers,
      maxQueuedFrames: 4,
    });
    open.push(a);
    const unreachable = new Set<number>();
    a.onUnreachable((peer, shards) => {
      expect(peer).toBe('gone');
      for (const shard of shards) unreachable.add(shard);
    });
    for (let i = 0; i < 200; i++) a.send('gone', batch);
    await until(() => (unreachable.size > 0 ? true : undefined));
    expect([...unreachable].sort()).toEqual([3, 7]);
  });

  it('reconnects quickly once a peer comes back', async () => {
    const a = await start('a', new Map());
    const b = await start('b', new Map());
    const port = b.port;
    a.setPeerAddresses(new Map([['b', `127.0.0.1:${port}`]]));
    let received = 0;
    b.onReceive(() => received++);
    a.send('b', batch);
    await until(() => (received === 1 ? true : undefined));
    await b.close();
    open.splice(open.indexOf(b), 1);
    const b2 = await start('b', new Map(), 'c1', port);
    let again = 0;
    b2.onReceive(() => again++);
    const started = Date.now();
    await until(() => {
      a.send('b', batch);
      return again > 0 ? true : undefined;
    }, 5_000);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
