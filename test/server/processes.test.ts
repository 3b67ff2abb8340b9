import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

/**
 * Asks nodes in turn, following the leader hint, until one answers (elections take a
 * moment); says which node answered.
 */
async function callLeaderAt(method: string, request: object) {
  let address = nodes[0].address;
  for (let attempt = 0; attempt < 400; attempt++) {
    try {
      return { reply: await call(address, method, request), address };
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

const callLeader = async (method: string, request: object) =>
  (await callLeaderAt(method, request)).reply;

// biome-ignore lint/suspicious/noExplicitAny: replies as proto-loader decodes them
function shardStats(address: string): Promise<any[]> {
  // biome-ignore lint/suspicious/noExplicitAny: a generated client
  const admin: any = new publicApi.Admin(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) =>
    admin.GetStats(
      {},
      { deadline: Date.now() + 2_000 },
      (error: grpc.ServiceError | null, reply: { shards: unknown[] }) => {
        admin.close();
        if (error) reject(error);
        else resolve(reply.shards);
      },
    ),
  );
}

function rssKiB(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1]);
}

it('a peer stopped for 20 s (SIGSTOP): the others keep serving with bounded memory, and it catches up after SIGCONT', async () => {
  const stopped = nodes[2];
  const others = nodes.slice(0, 2);
  await callLeader('Set', { key: 'warm-up', value: Buffer.from('x') });
  const rssBefore = others.map((n) => rssKiB(n.process?.pid as number));
  stopped.process?.kill('SIGSTOP');
  let written = 0;
  const until = performance.now() + 20_000;
  while (performance.now() < until) {
    const key = `during-${written}`;
    const { outcome } = await callLeader('Set', { key, value: Buffer.alloc(1024, written % 256) });
    expect(outcome).toBe('APPLIED');
    written++;
  }
  const rssGrowthMiB = others.map(
    (n, i) => (rssKiB(n.process?.pid as number) - rssBefore[i]) / 1024,
  );
  console.log(
    `while a peer was stopped: ${written} writes; the others' memory grew by ${rssGrowthMiB.map((m) => m.toFixed(0)).join(' and ')} MiB`,
  );
  for (const growth of rssGrowthMiB) expect(growth).toBeLessThan(200);
  stopped.process?.kill('SIGCONT');
  // Caught up: the resumed node holds as many keys in each shard as the others do.
  const keysByShard = async (address: string) =>
    new Map((await shardStats(address)).map((s) => [s.shard_id, Number(s.keys)]));
  const deadline = performance.now() + 15_000;
  for (;;) {
    const [mine, theirs] = await Promise.all([
      keysByShard(stopped.address),
      keysByShard(others[0].address),
    ]);
    if ([...theirs].every(([shard, keys]) => mine.get(shard) === keys)) break;
    if (performance.now() > deadline)
      expect.fail(`not caught up: ${JSON.stringify([...mine])} vs ${JSON.stringify([...theirs])}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}, 60_000);

it('SIGKILL of the process leading a shard: writes and reads work again after re-election, no acknowledged write lost', async () => {
  const acknowledged: string[] = [];
  for (let i = 0; i < 20; i++) {
    const key = `before-${i}`;
    if ((await callLeader('Set', { key, value: Buffer.from(key) })).outcome === 'APPLIED')
      acknowledged.push(key);
  }
  expect(acknowledged).toHaveLength(20);
  const { address } = await callLeaderAt('Set', { key: 'probe', value: Buffer.from('x') });
  const victim = nodes.find((n) => n.address === address);
  const exited = new Promise((resolve) => victim?.process?.once('exit', resolve));
  victim?.process?.kill('SIGKILL');
  await exited;
  const killedAt = performance.now();
  const after = await callLeader('Set', { key: 'probe', value: Buffer.from('after') });
  const recoveryMs = Math.round(performance.now() - killedAt);
  console.log(`writes to the killed leader's shard resumed ${recoveryMs} ms after SIGKILL`);
  expect(after.outcome).toBe('APPLIED');
  for (const key of acknowledged) {
    const got = await callLeader('Get', { key });
    expect(Buffer.from(got.entry.value).toString()).toBe(key);
  }
  nodes.splice(nodes.indexOf(victim as (typeof nodes)[number]), 1);
}, 60_000);

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
  expect(await Promise.all(exits)).toEqual(nodes.map(() => 0));
}, 30_000);
