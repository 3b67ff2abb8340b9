// The limits of the peer port (README, "Peer links"): frame sizes per link kind, memory
// while a frame arrives, connections at once, per peer and before they say who they are.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FrameKind,
  frameHeader,
  MAX_BATCH_FRAME_BYTES,
  PEER_PREFACE,
} from '../../src/transport/peer-wire.ts';
import { SharedPort } from '../../src/transport/shared-port.ts';
import {
  type PeerConnectionLimits,
  TcpPeerTransport,
} from '../../src/transport/tcp-peer-transport.ts';
import { LogCapture } from '../support/log-capture.ts';
import { until } from '../support/until.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

async function transport(limits: Partial<PeerConnectionLimits> = {}) {
  const log = new LogCapture();
  const t = await TcpPeerTransport.listen('127.0.0.1:0', {
    node: 'a',
    clusterId: 'c1',
    peers: new Map([['b', '127.0.0.1:1']]),
    logger: log.logger,
    limits,
  });
  cleanups.push(() => t.close());
  return { t, log };
}

function hello(node = 'b', purpose = 'raft'): Buffer {
  const payload = Buffer.from(JSON.stringify({ cluster: 'c1', node, purpose }));
  return Buffer.concat([frameHeader(FrameKind.hello, payload.length), payload]);
}

/** A raw connection to `port`; notes when the other side closes it. */
function connection(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const state = { socket, closed: false, received: [] as Buffer[] };
  socket.on('data', (chunk) => state.received.push(chunk));
  socket.once('close', () => {
    state.closed = true;
  });
  cleanups.push(() => socket.destroy());
  return state;
}

/** Writes `total` bytes of payload in 16 KiB pieces, following back-pressure; stops on close. */
async function writeBytes(socket: net.Socket, total: number): Promise<number> {
  const piece = Buffer.alloc(16 << 10, 7);
  let sent = 0;
  await new Promise<void>((resolve) => {
    const more = () => {
      while (sent < total && !socket.destroyed) {
        sent += piece.length;
        if (!socket.write(piece)) {
          socket.once('drain', more);
          return;
        }
      }
      resolve();
    };
    socket.once('close', () => resolve());
    more();
  });
  return sent;
}

describe('peer port limits', () => {
  it('refuses a frame length past the limit of its kind as soon as the header is in', async () => {
    const { t, log } = await transport();
    const c = connection(t.port);
    // Half of a 60 MiB frame would follow: nothing of it is buffered, the link closes.
    c.socket.write(Buffer.concat([PEER_PREFACE, hello(), frameHeader(FrameKind.batch, 60 << 20)]));
    await until(() => (c.closed ? true : undefined));
    expect(t.readingBytes).toBe(0);
    const [warning] = log.at('warn', 'peer connection closed');
    expect(String(warning?.reason)).toMatch(/out of bounds \(kind 2\)/);
    // A kind a raft link never receives (a snapshot chunk) is refused alike.
    const d = connection(t.port);
    d.socket.write(Buffer.concat([PEER_PREFACE, hello(), frameHeader(FrameKind.chunk, 10)]));
    await until(() => (d.closed ? true : undefined));
  });

  it('holds only what arrived of a large frame, and releases it when the link closes', async () => {
    const { t } = await transport();
    const declared = MAX_BATCH_FRAME_BYTES - 1;
    const c = connection(t.port);
    c.socket.write(Buffer.concat([PEER_PREFACE, hello(), frameHeader(FrameKind.batch, declared)]));
    const sent = await writeBytes(c.socket, declared / 4);
    await until(() => (t.readingBytes >= sent ? true : undefined));
    expect(t.readingBytes).toBeLessThanOrEqual(2 * sent);
    c.socket.destroy();
    await until(() => (t.acceptedConnections === 0 ? true : undefined));
    expect(t.readingBytes).toBe(0);
  });

  it('closes a connection whose frames in progress pass the transport-wide budget', async () => {
    const { t, log } = await transport({ maxReadingBytes: 1 << 20 });
    const c = connection(t.port);
    c.socket.write(Buffer.concat([PEER_PREFACE, hello(), frameHeader(FrameKind.batch, 4 << 20)]));
    await writeBytes(c.socket, 2 << 20);
    await until(() => (c.closed ? true : undefined));
    expect(t.readingBytes).toBe(0);
    expect(String(log.at('warn', 'peer connection closed')[0]?.reason)).toMatch(/would hold over/);
  });

  it('refuses raft links past the limit per peer, with the reason, and keeps the first', async () => {
    const { t, log } = await transport({ maxRaftLinksPerPeer: 1 });
    const first = connection(t.port);
    first.socket.write(Buffer.concat([PEER_PREFACE, hello()]));
    await until(() => (first.received.length > 0 ? true : undefined)); // its pong
    const second = connection(t.port);
    second.socket.write(Buffer.concat([PEER_PREFACE, hello()]));
    await until(() => (second.closed ? true : undefined));
    expect(Buffer.concat(second.received).toString('latin1')).toMatch(
      /already 1 raft links from b/,
    );
    expect(log.at('warn', 'refused a peer link')).toHaveLength(1);
    expect(first.closed).toBe(false);
  });

  it('closes connections past the limit at once, and one that sends no hello in time', async () => {
    const { t } = await transport({ maxConnections: 2, helloTimeoutMs: 200 });
    const silent = [connection(t.port), connection(t.port)];
    for (const c of silent) c.socket.write(PEER_PREFACE);
    await until(() => (t.acceptedConnections === 2 ? true : undefined));
    const third = connection(t.port);
    third.socket.write(PEER_PREFACE);
    await until(() => (third.closed ? true : undefined));
    // No hello within 200 ms: closed, and the slots are free again.
    await until(() => (silent.every((c) => c.closed) ? true : undefined));
    expect(t.acceptedConnections).toBe(0);
  });
});

describe('shared port limits', () => {
  it('closes connections past the limit of those not yet told apart, and idle ones', async () => {
    const log = new LogCapture();
    const port = await SharedPort.listen(
      '127.0.0.1:0',
      {},
      {
        maxUndecided: 2,
        prefaceTimeoutMs: 200,
        logger: log.logger,
      },
    );
    cleanups.push(() => port.close());
    const idle = [connection(port.port), connection(port.port)];
    await until(() => (port.undecidedConnections === 2 ? true : undefined));
    const third = connection(port.port);
    await until(() => (third.closed ? true : undefined));
    expect(idle.some((c) => c.closed)).toBe(false);
    expect(log.at('warn')).toHaveLength(1);
    await until(() => (idle.every((c) => c.closed) ? true : undefined));
  });
});
