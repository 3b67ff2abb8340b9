import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { publicApi } from '../../src/server/proto.ts';
import { LEADER_METADATA_KEY } from '../../src/server/status.ts';

/** A free loopback port (asked of the OS, then released for the node to take). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const main = path.join(import.meta.dirname, '../../src/server/main.ts');
const nodes: { id: string; address: string; process?: ChildProcess }[] = [];

beforeAll(async () => {
  for (const id of ['n1', 'n2', 'n3']) nodes.push({ id, address: `127.0.0.1:${await freePort()}` });
  const initial = nodes.map((n) => `${n.id}=${n.address}`).join(',');
  for (const node of nodes) {
    node.process = spawn(
      process.execPath,
      [
        main,
        '--node-id',
        node.id,
        '--listen',
        node.address,
        '--bootstrap',
        '--initial-nodes',
        initial,
        '--shards',
        '4',
      ],
      {
        stdio: 'ignore',
        env: { ...process.env, RAFTCACHE_LOG_LEVEL: 'warn' },
      },
    );
  }
});

afterAll(() => {
  for (const node of nodes) node.process?.kill('SIGKILL');
});

// biome-ignore lint/suspicious/noExplicitAny: replies as proto-loader decodes them
function call(address: string, method: string, request: object): Promise<any> {
  // biome-ignore lint/suspicious/noExplicitAny: a generated client
  const client: any = new publicApi.Cache(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client[method](
      request,
      { deadline: Date.now() + 2_000 },
      (error: grpc.ServiceError | null, reply: unknown) => {
        client.close();
        if (error) reject(error);
        else resolve(reply);
      },
    ),
  );
}

/** Asks nodes in turn, following the leader hint, until one answers (elections take a moment). */
async function callLeader(method: string, request: object) {
  let address = nodes[0].address;
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      return await call(address, method, request);
    } catch (error) {
      const e = error as grpc.ServiceError;
      const hint = e.metadata?.get(LEADER_METADATA_KEY)[0];
      address = typeof hint === 'string' ? hint : nodes[(attempt + 1) % nodes.length].address;
      if (e.code !== grpc.status.FAILED_PRECONDITION)
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`no node answered ${method}`);
}

it('three node processes serve the API, and stop cleanly on SIGTERM', async () => {
  const set = await callLeader('Set', { key: 'across', value: Buffer.from('processes') });
  expect(set.outcome).toBe('APPLIED');
  const got = await callLeader('Get', { key: 'across' });
  expect(Buffer.from(got.entry.value).toString()).toBe('processes');

  const exits = nodes.map(
    (node) =>
      new Promise<number | null>((resolve) => node.process?.once('exit', (code) => resolve(code))),
  );
  for (const node of nodes) node.process?.kill('SIGTERM');
  expect(await Promise.all(exits)).toEqual([0, 0, 0]);
}, 30_000);
