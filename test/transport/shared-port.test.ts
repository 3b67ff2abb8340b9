import { Buffer } from 'node:buffer';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { message } from '../../src/raft/types.ts';
import { GRPC_SERVER_OPTIONS, parseAddress, SharedPort } from '../../src/transport/shared-port.ts';
import { TcpPeerTransport } from '../../src/transport/tcp-peer-transport.ts';
import type { ShardMessage } from '../../src/transport/transport.ts';
import { until } from '../support/until.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

/** A one-method gRPC service on raw bytes: it answers `echo ` and the request. */
const ECHO_PATH = '/test.Echo/Echo';
const bytes = (value: Buffer) => value;
const echoService: grpc.ServiceDefinition = {
  echo: {
    path: ECHO_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
};

function echo(client: grpc.Client, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      ECHO_PATH,
      bytes,
      bytes,
      Buffer.from(text),
      { deadline: Date.now() + 3_000 },
      (error, reply) => (error ? reject(error) : resolve((reply as Buffer).toString())),
    );
  });
}

/** A node's port serving gRPC (the echo service) and the peer links of node `b`. */
async function node(options?: { prefaceTimeoutMs?: number }) {
  const server = new grpc.Server(GRPC_SERVER_OPTIONS);
  server.addService(echoService, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) =>
      done(null, Buffer.concat([Buffer.from('echo '), call.request])),
  });
  const peers = new TcpPeerTransport({ node: 'b', clusterId: 'c1' });
  const port = await SharedPort.listen('127.0.0.1:0', { grpc: server, peers }, options);
  cleanups.push(async () => {
    port.close();
    server.forceShutdown();
    await peers.close();
  });
  return { port: port.port, peers };
}

const batch: ShardMessage[] = [
  {
    shardId: 3,
    message: message({ type: 'heartbeat', from: 1, to: 2, term: 4, commit: 9, context: 2 }),
  },
];

describe('shared port', () => {
  it('serves gRPC calls and peer links on one port at once', async () => {
    const b = await node();
    const a = await TcpPeerTransport.listen('127.0.0.1:0', {
      node: 'a',
      clusterId: 'c1',
      peers: new Map([['b', `127.0.0.1:${b.port}`]]),
    });
    cleanups.push(() => a.close());
    const client = new grpc.Client(`127.0.0.1:${b.port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    let received = 0;
    b.peers.onReceive((from, got) => {
      expect(from).toBe('a');
      expect(got).toEqual(batch);
      received++;
    });

    const rounds = 20;
    const replies = Promise.all(
      Array.from({ length: rounds }, (_, i) => {
        a.send('b', batch);
        return echo(client, `call ${i}`);
      }),
    );
    expect(await replies).toEqual(Array.from({ length: rounds }, (_, i) => `echo call ${i}`));
    await until(() => (received === rounds ? true : undefined));
    // Both kinds of connection still work once the other is busy too.
    a.send('b', batch);
    expect(await echo(client, 'last')).toBe('echo last');
    await until(() => (received === rounds + 1 ? true : undefined));
  });

  it('closes a connection that sends fewer than 8 bytes and then nothing', async () => {
    const timeoutMs = 200;
    const b = await node({ prefaceTimeoutMs: timeoutMs });
    const socket = net.connect(b.port, '127.0.0.1');
    cleanups.push(() => socket.destroy());
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    const openedAt = performance.now();
    socket.write('PRI');
    let closedAt: number | undefined;
    socket.once('close', () => {
      closedAt = performance.now();
    });
    const closed = await until(() => closedAt, 1_000);
    expect(closed - openedAt).toBeGreaterThanOrEqual(timeoutMs - 5);
  });

  it('parses host:port and [v6]:port addresses, and refuses others', () => {
    expect(parseAddress('127.0.0.1:7401')).toEqual({ host: '127.0.0.1', port: 7401 });
    expect(parseAddress('[::1]:7401')).toEqual({ host: '::1', port: 7401 });
    expect(parseAddress('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    for (const address of ['nope', 'host:99999', 'host:-1', 'host:', 'host:7401x', 'host:0x10']) {
      expect(() => parseAddress(address), address).toThrow(/is not host:port/);
    }
  });
});
