/**
 * `npm run bench:cluster`: SET and GET against a local 3-node cluster of separate processes
 * (as `npm start` runs it), 1 KB values over 100,000 keys, at 64 and 256 operations in
 * flight: ops/s and latency p50/p99/p999 (HDR histograms, microseconds). Three drivers: raw
 * gRPC over the Pipeline stream and over unary calls (requests go to each key's shard
 * leader, learned from the not-leader hints), and the SDK (`CacheClient`, auto-pipelining,
 * with its routing, retries and policies; its rows also give requests per stream write).
 * Prints a table and writes bench/results/cluster.json. `--quick`: fewer operations.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as hdr from 'hdr-histogram-js';
import { CacheClient } from '../src/client/index.ts';
import { publicApi } from '../src/server/proto.ts';
import { LEADER_METADATA_KEY } from '../src/server/status.ts';
import { keySlot, slotsOf } from '../src/shard/key-slot.ts';
import { printTable, writeResults } from './support/report.ts';

const quick = process.argv.includes('--quick');
const OPERATIONS = quick ? 5_000 : 40_000;
const KEYS = 100_000;
const SHARDS = 16;
const VALUE = Buffer.alloc(1024, 7);
const BASE_PORT = Number(process.env.RAFTCACHE_BENCH_PORT ?? 7601);
const nodes = [1, 2, 3].map((i) => ({ id: `n${i}`, address: `127.0.0.1:${BASE_PORT + i - 1}` }));

// biome-ignore lint/suspicious/noExplicitAny: generated clients and decoded replies
type Any = any;

function startCluster(): ChildProcess[] {
  const initial = nodes.map((n) => `${n.id}=${n.address}`).join(',');
  const main = path.join(import.meta.dirname, '..', 'src', 'server', 'main.ts');
  return nodes.map((n) =>
    spawn(
      process.execPath,
      [
        main,
        '--node-id',
        n.id,
        '--listen',
        n.address,
        '--bootstrap',
        '--initial-nodes',
        initial,
        '--shards',
        String(SHARDS),
      ],
      {
        stdio: 'ignore',
        env: { ...process.env, RAFTCACHE_LOG_LEVEL: 'warn' },
      },
    ),
  );
}

const clients = new Map(
  nodes.map((n) => [
    n.address,
    new publicApi.Cache(n.address, grpc.credentials.createInsecure()) as Any,
  ]),
);
/** Shard → leader address, learned from answers. */
const leaders = new Map<number, string>();
const shardOf = (key: string) => {
  const slot = keySlot(key);
  for (let s = 0; s < SHARDS; s++) if (slot <= slotsOf(s, SHARDS).last) return s;
  return SHARDS - 1;
};

function unary(address: string, method: string, request: object): Promise<Any> {
  return new Promise((resolve, reject) =>
    clients
      .get(address)
      [method](request, (error: grpc.ServiceError | null, reply: Any) =>
        error ? reject(error) : resolve(reply),
      ),
  );
}

/** Finds every shard's leader before measuring, so that no timed request is redirected. */
async function learnLeaders(): Promise<void> {
  for (let shard = 0; shard < SHARDS; shard++) {
    const key = keyOfShard(shard);
    for (let attempt = 0; !leaders.has(shard); attempt++) {
      const address = nodes[attempt % nodes.length].address;
      try {
        await unary(address, 'Set', { key, value: VALUE });
        leaders.set(shard, address);
      } catch (error) {
        const hint = (error as grpc.ServiceError).metadata?.get(LEADER_METADATA_KEY)[0];
        if (typeof hint === 'string') leaders.set(shard, hint);
        else await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}

function keyOfShard(shard: number): string {
  for (let i = 0; ; i++) if (shardOf(`probe-${i}`) === shard) return `probe-${i}`;
}

const keyAt = (i: number) => `key-${i % KEYS}`;

async function runUnary(op: 'Set' | 'Get', inFlight: number) {
  const histogram = newHistogram();
  let next = 0;
  let errors = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < OPERATIONS) {
      const key = keyAt(next++);
      const t = performance.now();
      try {
        await unary(
          leaders.get(shardOf(key)) as string,
          op,
          op === 'Set' ? { key, value: VALUE } : { key },
        );
      } catch {
        errors++;
      }
      histogram.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return summary(`unary ${op}`, inFlight, histogram, performance.now() - started, errors);
}

async function runPipeline(op: 'set' | 'get', inFlight: number) {
  const histogram = newHistogram();
  const streams = new Map<string, Any>();
  const sentAt = new Map<string, number>();
  let next = 0;
  let done = 0;
  let errors = 0;
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const send = () => {
      const i = next++;
      const key = keyAt(i);
      const address = leaders.get(shardOf(key)) as string;
      let stream = streams.get(address);
      if (!stream) {
        stream = clients.get(address).Pipeline();
        stream.on('data', (reply: Any) => {
          histogram.recordValue(
            Math.max(1, Math.round((performance.now() - (sentAt.get(reply.tag) as number)) * 1000)),
          );
          sentAt.delete(reply.tag);
          if (reply.reply === 'status') errors++;
          if (++done === OPERATIONS) resolve();
          else if (next < OPERATIONS) send();
        });
        stream.on('error', () => {});
        streams.set(address, stream);
      }
      sentAt.set(String(i), performance.now());
      stream.write(
        op === 'set'
          ? { tag: String(i), set: { key, value: VALUE } }
          : { tag: String(i), get: { key } },
      );
    };
    for (let k = 0; k < inFlight && next < OPERATIONS; k++) send();
  });
  for (const stream of streams.values()) stream.end();
  return summary(
    `pipeline ${op.toUpperCase()}`,
    inFlight,
    histogram,
    performance.now() - started,
    errors,
  );
}

/** The SDK as an application uses it: `inFlight` calls at a time, each awaited. */
async function runSdk(sdk: CacheClient, op: 'set' | 'get', inFlight: number) {
  const histogram = newHistogram();
  const before = sdk.metrics;
  let next = 0;
  let errors = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < OPERATIONS) {
      const key = keyAt(next++);
      const t = performance.now();
      try {
        if (op === 'set') await sdk.set(key, VALUE);
        else await sdk.get(key);
      } catch {
        errors++;
      }
      histogram.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const after = sdk.metrics;
  return {
    ...summary(`sdk ${op.toUpperCase()}`, inFlight, histogram, performance.now() - started, errors),
    requestsPerWrite: round1(
      (after.pipelinedRequests - before.pipelinedRequests) /
        (after.pipelineWrites - before.pipelineWrites),
    ),
    retries: after.retries - before.retries,
  };
}

const round1 = (n: number) => Math.round(n * 10) / 10;

function newHistogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

function summary(
  name: string,
  inFlight: number,
  histogram: hdr.Histogram,
  ms: number,
  errors: number,
) {
  return {
    mode: name,
    inFlight,
    opsPerSecond: Math.round(OPERATIONS / (ms / 1000)),
    p50Us: histogram.getValueAtPercentile(50),
    p99Us: histogram.getValueAtPercentile(99),
    p999Us: histogram.getValueAtPercentile(99.9),
    errors,
  };
}

const children = startCluster();
const sdk = new CacheClient({ seeds: nodes.map((n) => n.address) });
try {
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  await learnLeaders();
  await sdk.connect();
  console.log(
    `cluster bench: 3 node processes, ${SHARDS} shards, ${OPERATIONS.toLocaleString('en-US')} ops per run, 1 KB values over ${KEYS.toLocaleString('en-US')} keys`,
  );
  const results: (ReturnType<typeof summary> & { requestsPerWrite?: number })[] = [];
  for (const inFlight of [64, 256]) {
    for (const op of ['set', 'get'] as const) {
      results.push(await runPipeline(op, inFlight));
      console.log(`  ${results.at(-1)?.mode} @${inFlight} done`);
    }
    for (const op of ['Set', 'Get'] as const) {
      results.push(await runUnary(op, inFlight));
      console.log(`  ${results.at(-1)?.mode} @${inFlight} done`);
    }
    for (const op of ['set', 'get'] as const) {
      results.push(await runSdk(sdk, op, inFlight));
      console.log(`  ${results.at(-1)?.mode} @${inFlight} done`);
    }
  }
  printTable(
    results.map((r) => ({
      mode: r.mode,
      'in flight': r.inFlight,
      'ops/s': r.opsPerSecond,
      'p50 µs': r.p50Us,
      'p99 µs': r.p99Us,
      'p999 µs': r.p999Us,
      errors: r.errors,
      'req/write': r.requestsPerWrite ?? '',
    })),
  );
  console.log('targets (mission): 100,000 ops/s; p99 < 1 ms at 10,000 ops/s');
  console.log(`written to ${writeResults('cluster', results)}`);
} finally {
  await sdk.close();
  for (const client of clients.values()) client.close();
  for (const child of children) child.kill('SIGTERM');
}
