import { Buffer } from 'node:buffer';
import net from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { message } from '../../src/raft/types.ts';
import { encodeFrame } from '../../src/transport/peer-codec.ts';
import {
  FrameKind,
  FrameReader,
  frameHeader,
  PEER_PREFACE,
} from '../../src/transport/peer-wire.ts';
import { TcpPeerTransport } from '../../src/transport/tcp-peer-transport.ts';
import type { ShardMessage, SnapshotTransfer } from '../../src/transport/transport.ts';
import { until } from '../support/until.ts';

const open: TcpPeerTransport[] = [];
/** Closes what a test opened besides transports: raw sockets, servers. */
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function start(node: string, peers: Map<string, string>, clusterId = 'c1', port = 0) {
  const transport = await TcpPeerTransport.listen(`127.0.0.1:${port}`, { node, clusterId, peers });
  open.push(transport);
  return transport;
}

/** Rejects when `promise` has not settled within `ms`: nothing may hang. */
function within<T>(promise: Promise<T>, ms = 3_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function frame(kind: FrameKind, payload: Uint8Array | string): Buffer {
  const bytes = Buffer.from(payload);
  return Buffer.concat([frameHeader(kind, bytes.length), bytes]);
}

function helloFrame(cluster: string, node = 'x', purpose = 'raft'): Buffer {
  return frame(FrameKind.hello, JSON.stringify({ cluster, node, purpose }));
}

/**
 * A peer connection written by hand: the preface, then `bytes`. It collects the frames it
 * gets back, and notes when the other side closes it.
 */
function rawPeer(port: number, bytes: Buffer) {
  const socket = net.connect(port, '127.0.0.1');
  cleanups.push(() => socket.destroy());
  const peer = { frames: [] as { kind: number; text: string }[], closed: false };
  const reader = new FrameReader((kind, payload) =>
    peer.frames.push({ kind, text: payload.toString('utf8') }),
  );
  socket.on('data', (chunk) => reader.push(chunk));
  socket.on('error', () => {});
  socket.once('close', () => {
    peer.closed = true;
  });
  socket.write(Buffer.concat([PEER_PREFACE, bytes]));
  return peer;
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
        message: message({ type: 'snap', from: 1, to: 2, term: 3, snapshot }),
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

  it('cuts the link to a hung peer by keepalive, then reports what is sent to it', async () => {
    // Accepts and never answers, like a SIGSTOPped process. It reads what comes (and drops
    // it) only so that the test sees the link being cut.
    const accepted: net.Socket[] = [];
    let cutAt: number | undefined;
    const hung = net.createServer((socket) => {
      accepted.push(socket);
      socket.resume();
      socket.on('error', () => {});
      socket.once('close', () => {
        cutAt ??= performance.now();
      });
    });
    cleanups.push(() => {
      hung.close();
      for (const socket of accepted) socket.destroy();
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(hung.address() as net.AddressInfo).port}`;
    const a = await TcpPeerTransport.listen('127.0.0.1:0', {
      node: 'a',
      clusterId: 'c1',
      peers: new Map([['hung', address]]),
      keepaliveMs: 50,
      keepaliveTimeoutMs: 300,
    });
    open.push(a);
    const reported: number[][] = [];
    a.onUnreachable((peer, shards) => {
      expect(peer).toBe('hung');
      reported.push([...shards]);
    });

    const sentAt = performance.now();
    a.send('hung', batch);
    const cut = await until(() => cutAt);
    expect(accepted).toHaveLength(1);
    // The batch went into the socket: nothing to report until the link is cut.
    expect(reported).toEqual([]);
    expect(cut - sentAt).toBeGreaterThanOrEqual(300);
    expect(cut - sentAt).toBeLessThan(2_000);
    // Cut, the link waits out its backoff: what is sent meanwhile is reported.
    await until(() => {
      a.send('hung', batch);
      return reported.length > 0 ? true : undefined;
    });
    expect(reported[0]).toEqual([3, 7]);
  });

  it('closes a connection that breaks the wire, and keeps serving the good links', async () => {
    const a = await start('a', new Map());
    const b = await start('b', new Map());
    a.setPeerAddresses(new Map([['b', `127.0.0.1:${b.port}`]]));
    const received: string[] = [];
    b.onReceive((from) => received.push(from));
    a.send('b', batch);
    await until(() => (received.length === 1 ? true : undefined));

    const hello = helloFrame('c1');
    const breaches: Record<string, Buffer> = {
      'a length of 0': Buffer.alloc(5),
      'bytes that are not frames': Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      'a batch before the hello': frame(FrameKind.batch, encodeFrame(batch)),
      'a hello that is not JSON': frame(FrameKind.hello, '{cluster'),
      'a hello of no known purpose': helloFrame('c1', 'x', 'gossip'),
      'a snapshot chunk on a raft link': Buffer.concat([hello, frame(FrameKind.chunk, 'data')]),
      'an ok on a raft link': Buffer.concat([hello, frame(FrameKind.ok, '')]),
      'a batch that is not a peer-codec frame': Buffer.concat([
        hello,
        frame(FrameKind.batch, new Uint8Array([0xff, 1, 2, 3])),
      ]),
    };
    const peers = Object.entries(breaches).map(([what, bytes]) => ({
      what,
      peer: rawPeer(b.port, bytes),
    }));
    // A well-behaved raw link alongside: answered, and left open.
    const good = rawPeer(
      b.port,
      Buffer.concat([hello, frame(FrameKind.batch, encodeFrame(batch)), frame(FrameKind.ping, '')]),
    );
    await until(() => (peers.every(({ peer }) => peer.closed) ? true : undefined));
    await until(() => (good.frames.length === 2 ? true : undefined));
    expect(good.frames.map((f) => f.kind)).toEqual([FrameKind.pong, FrameKind.pong]);
    expect(good.closed).toBe(false);
    expect(received.filter((from) => from === 'x')).toEqual(['x']);

    a.send('b', batch);
    await until(() => (received.filter((from) => from === 'a').length === 2 ? true : undefined));
  });

  it('tells a link from another cluster why it is refused, then closes it', async () => {
    const b = await start('b', new Map());
    const stranger = rawPeer(b.port, helloFrame('other-cluster'));
    await until(() => (stranger.closed ? true : undefined));
    expect(stranger.frames).toHaveLength(1);
    expect(stranger.frames[0].kind).toBe(FrameKind.refused);
    expect(stranger.frames[0].text).toMatch(/cluster c1/);

    const joining = await TcpPeerTransport.listen('127.0.0.1:0', { node: 'n' });
    open.push(joining);
    const early = rawPeer(joining.port, helloFrame('c1'));
    await until(() => (early.closed ? true : undefined));
    expect(early.frames).toEqual([
      { kind: FrameKind.refused, text: 'this node has not joined a cluster yet' },
    ]);
  });

  it('fails the receiving side of a snapshot whose sender breaks off midway', async () => {
    const a = await start('a', new Map());
    const b = await start('b', new Map());
    a.setPeerAddresses(new Map([['b', `127.0.0.1:${b.port}`]]));
    const got: Uint8Array[] = [];
    const received = new Promise<unknown>((resolve) => {
      b.onSnapshot(async (_from, transfer) => {
        try {
          for await (const chunk of transfer.chunks) got.push(chunk);
          resolve('every chunk and the end');
        } catch (error) {
          resolve(error);
          throw error;
        }
      });
    });
    const snapshot = { index: 40, term: 3, conf: { voters: [1, 2, 3], learners: [] } };
    const sent = a.sendSnapshot('b', {
      shardId: 5,
      message: message({ type: 'snap', from: 1, to: 2, term: 3, snapshot }),
      snapshot,
      chunks: (async function* () {
        yield new Uint8Array(1_000).fill(1);
        // Midway, once the first chunk is in: the sender's source fails and its link closes.
        await until(() => (got.length === 1 ? true : undefined));
        throw new Error('snapshot file vanished');
      })(),
    });
    await expect(within(sent)).rejects.toThrow(/vanished/);
    const outcome = await within(received);
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toMatch(/snapshot link from a closed/);
    expect(got).toHaveLength(1);
  });
});

describe('TCP peer transport: failures found in review', () => {
  const snapshot = { index: 40, term: 3, conf: { voters: [1, 2, 3], learners: [] } };
  const snapMessage = () => message({ type: 'snap', from: 1, to: 2, term: 3, snapshot });
  const snapHeader = () =>
    frame(FrameKind.batch, encodeFrame([{ shardId: 5, message: snapMessage() }]));
  /** A transfer of shard 5's snapshot whose data are `count` chunks of `bytes`. */
  const transferOf = (count: number, bytes: number): SnapshotTransfer => ({
    shardId: 5,
    message: snapMessage(),
    snapshot,
    chunks: (async function* () {
      for (let i = 0; i < count; i++) yield new Uint8Array(bytes);
    })(),
  });

  it('survives snapshot connections that end early or send after their end (no stray error event)', async () => {
    const b = await start('b', new Map());
    const errors: string[] = [];
    b.onSnapshot(async (_from, transfer) => {
      try {
        for await (const _ of transfer.chunks);
      } catch (error) {
        errors.push((error as Error).message);
        throw error;
      }
    });
    // A hello and the header, then gone: the handler's iteration fails, nothing else.
    const early = rawPeer(b.port, Buffer.concat([helloFrame('c1', 'a', 'snapshot'), snapHeader()]));
    await until(() => (early.frames.length > 0 ? true : undefined));
    for (const cleanup of cleanups.splice(0)) cleanup();
    await until(() => (errors.length > 0 ? true : undefined));
    expect(errors[0]).toMatch(/snapshot link from a closed/);
    // A chunk after the end: that connection is closed as a wire error.
    const late = rawPeer(
      b.port,
      Buffer.concat([
        helloFrame('c1', 'a', 'snapshot'),
        snapHeader(),
        frame(FrameKind.end, ''),
        frame(FrameKind.chunk, 'late'),
      ]),
    );
    await until(() => (late.closed ? true : undefined));
    // And the transport still takes transfers.
    const a = await start('a', new Map([['b', `127.0.0.1:${b.port}`]]));
    await within(a.sendSnapshot('b', transferOf(1, 1)));
  });

  it('refuses a large snapshot its handler will not read, at once, with the reason', async () => {
    const b = await start('b', new Map());
    b.onSnapshot(async () => {
      throw new Error('no replica of shard 5 here');
    });
    const a = await start('a', new Map([['b', `127.0.0.1:${b.port}`]]));
    const sent = a.sendSnapshot('b', transferOf(256, 1 << 20));
    await expect(within(sent)).rejects.toThrow(/no replica of shard 5 here/);
  });

  it('fails a snapshot sent to a peer that stopped answering, instead of waiting for good', async () => {
    // Accepts and reads, never answers: a SIGSTOPped receiver (its kernel still takes bytes).
    const accepted: net.Socket[] = [];
    const stopped = net.createServer((socket) => {
      accepted.push(socket);
      socket.resume();
      socket.on('error', () => {});
    });
    cleanups.push(() => {
      stopped.close();
      for (const socket of accepted) socket.destroy();
    });
    await new Promise<void>((resolve) => stopped.listen(0, '127.0.0.1', resolve));
    const a = await TcpPeerTransport.listen('127.0.0.1:0', {
      node: 'a',
      clusterId: 'c1',
      peers: new Map([['b', `127.0.0.1:${(stopped.address() as net.AddressInfo).port}`]]),
      keepaliveMs: 50,
      keepaliveTimeoutMs: 300,
    });
    open.push(a);
    const sent = a.sendSnapshot('b', transferOf(1, 1_000));
    await expect(within(sent)).rejects.toThrow(/snapshot link to b closed/);
  });

  /** A proxy to `port` passing ~1 MB/s toward it: pings wait behind a second of bytes. */
  async function slowLinkTo(port: number): Promise<string> {
    const proxy = net.createServer((inbound) => {
      const outbound = net.connect(port, '127.0.0.1');
      const slow = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          setTimeout(() => done(null, chunk), chunk.length / 1_000);
        },
      });
      pipeline(inbound, slow, outbound).catch(() => {});
      pipeline(outbound, inbound).catch(() => {});
      cleanups.push(() => {
        inbound.destroy();
        outbound.destroy();
      });
    });
    cleanups.push(() => proxy.close());
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  }
  const fast = { clusterId: 'c1', keepaliveMs: 100, keepaliveTimeoutMs: 300 };

  it('sends a snapshot over a link slower than the keepalive timeout allows for its pings', async () => {
    const b = await TcpPeerTransport.listen('127.0.0.1:0', { node: 'b', ...fast });
    open.push(b);
    let received = 0;
    b.onSnapshot(async (_from, transfer) => {
      for await (const chunk of transfer.chunks) received += chunk.length;
    });
    const a = await TcpPeerTransport.listen('127.0.0.1:0', {
      node: 'a',
      peers: new Map([['b', await slowLinkTo(b.port)]]),
      ...fast,
    });
    open.push(a);
    const started = performance.now();
    await within(a.sendSnapshot('b', transferOf(2, 1 << 20)), 10_000);
    expect(received).toBe(2 << 20);
    // It did cross slowly: far longer than the keepalive timeout.
    expect(performance.now() - started).toBeGreaterThan(1_000);
  });

  it('keeps a raft link whose pings wait behind a backlog on a slow link', async () => {
    const b = await TcpPeerTransport.listen('127.0.0.1:0', { node: 'b', ...fast });
    open.push(b);
    const a = await TcpPeerTransport.listen('127.0.0.1:0', {
      node: 'a',
      peers: new Map([['b', await slowLinkTo(b.port)]]),
      ...fast,
    });
    open.push(a);
    const dropped: number[][] = [];
    a.onUnreachable((_peer, shards) => dropped.push([...shards]));
    let received = 0;
    b.onReceive(() => received++);
    // 2 MB of appends at once: two seconds to cross, the keepalive timeout 0.3 s.
    const started = performance.now();
    const append = (i: number): ShardMessage[] => [
      {
        shardId: 7,
        message: message({
          type: 'app',
          from: 1,
          to: 2,
          term: 4,
          index: i,
          logTerm: 4,
          entries: [{ term: 4, index: i + 1, type: 'normal', data: new Uint8Array(100_000) }],
        }),
      },
    ];
    for (let i = 0; i < 20; i++) a.send('b', append(i));
    await until(() => (received === 20 ? true : undefined), 10_000);
    expect(performance.now() - started).toBeGreaterThan(1_000);
    expect(dropped).toEqual([]);
  });

  it('drops and reports batches for a peer whose address cannot be dialled, without throwing', async () => {
    const a = await start('a', new Map([['bad', '127.0.0.1:70000']]));
    const reported: number[][] = [];
    a.onUnreachable((_peer, shards) => reported.push([...shards]));
    expect(() => a.send('bad', batch)).not.toThrow();
    expect(() => a.send('bad', batch)).not.toThrow();
    expect(reported).toEqual([
      [3, 7],
      [3, 7],
    ]);
  });
});
