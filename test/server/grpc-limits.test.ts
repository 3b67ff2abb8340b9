// The node's gRPC server bounds what connections may hold (src/server/grpc-limits.ts).
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PUBLIC_SERVER_OPTIONS } from '../../src/server/grpc-limits.ts';
import { startTestNode, type TestNode } from '../support/test-node.ts';
import { until } from '../support/until.ts';

let node: TestNode;

beforeAll(async () => {
  node = await startTestNode();
});

afterAll(async () => {
  await node.node.close();
});

it('a node tells each connection it may open 256 streams at once', async () => {
  const session = http2.connect(`http://${node.address}`);
  session.on('error', () => {});
  try {
    const settings = await new Promise<http2.Settings>((resolve) =>
      session.once('remoteSettings', resolve),
    );
    expect(settings.maxConcurrentStreams).toBe(256);
  } finally {
    session.close();
  }
});

it('an idle connection is closed by the server (the idle bound, shortened here)', async () => {
  const server = new grpc.Server({ ...PUBLIC_SERVER_OPTIONS, 'grpc.max_connection_idle_ms': 300 });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  let closed = false;
  session.on('goaway', () => {
    closed = true;
  });
  session.on('close', () => {
    closed = true;
  });
  try {
    await until(() => (closed ? true : undefined), 5_000);
  } finally {
    session.destroy();
    server.forceShutdown();
  }
});
