/**
 * `npm run bench:cluster`: SET and GET against a local 3-node cluster of separate processes
 * (as `npm start` runs it), over the Pipeline stream and over unary calls, 1 KB values over
 * 100,000 keys, at 64 and 256 operations in flight: ops/s and latency p50/p99/p999 (HDR
 * histograms, microseconds), and the same through the SDK (`CacheClient`, auto-pipelining;
 * modes `sdk-set`, `sdk-get`, with the requests each stream write carried). Raw requests go to each key's shard leader, learned from the
 * not-leader hints (and followed again if a leader moves during a run). A SET's reply carries
 * its entry's raft index, so the distinct versions seen tell how many writes shared a log
 * entry. Prints a table and writes bench/results/cluster.json (`runs`, `ratios`).
 *
 * Options:
 * - `--quick`: 5,000 operations per run instead of 40,000; `--ops N` sets any count.
 * - `--only pipeline-set,unary-get,sdk-set,etcd-put,redis-get,...`: run only these modes.
 * - `--in-flight 64,256`: the closed-loop concurrencies.
 * - `--rate 10000[,...]`: also offer Pipeline SETs and GETs at a fixed rate (open loop), each
 *   latency measured from the moment its request was due, not from when it was sent, so a
 *   stalled sender cannot hide a stall (no coordinated omission).
 * - `--cpu-prof DIR`: the node processes write V8 CPU profiles to DIR when they stop.
 * - `--consistency LEASE`: GETs at another consistency than the default LINEARIZABLE.
 * - `--shards N`: data shards (default 16, as `npm start`). Fewer shards put more of the
 *   writes in flight into each shard's log entries.
 *
 * Then the floor: the same Pipeline load against one process that answers every request at
 * once, with the real .proto, grpc-js and reply writer but no Raft, peers or store (modes
 * `echo-set`, `echo-get`): what a gRPC hop into a process and back costs on this machine.
 *
 * Last come the same SETs and GETs against three hosts in this one process, called directly
 * over the in-memory network (modes `in-process-set`, `in-process-get`): the baseline of what
 * the hosts, Raft and the store cost without gRPC and processes (their CPU column is the
 * whole process's).
 *
 * References, for ratios measured in the same run on the same machine with the same closed
 * loops, each alone on the machine while it runs (support/references.ts):
 * - etcd (modes `etcd-put`, `etcd-get`: Put and linearizable Range over its gRPC API, sent to
 *   the leader on a channel per 32 in flight): a 3-member cluster of local processes, data dirs
 *   on tmpfs so that fsync is not what is measured (raftcache keeps its log in memory).
 *   `apt-get install -y etcd-server` (v3.4).
 * - Redis (modes `redis-set`, `redis-get`, ioredis with auto-pipelining): one redis-server with
 *   no persistence, unreplicated: the ceiling of a cache on this machine.
 *   `apt-get install -y redis-server`.
 * They run by default when their binaries are on PATH; a missing one skips its modes, saying
 * which package to install (the bench installs nothing). After the table come the ratios
 * raftcache ÷ reference of ops/s and of node CPU per op (pipeline and unary SET vs etcd Put,
 * GET vs etcd Range, pipeline vs Redis), also in the JSON as `ratios`. etcd's API is unary
 * only: its ops/s are bounded by grpc-js's unary client here (see the client CPU column).
 *
 * Besides latencies, each run reports the CPU time the three nodes (together) and the load
 * generator spent per operation (Linux: from /proc): on a shared machine the ops/s swing
 * with what else runs, the CPU cost of an operation much less.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as hdr from 'hdr-histogram-js';
import { CacheClient } from '../src/client/index.ts';
import { LEADER_METADATA_KEY } from '../src/protocol/metadata.ts';
import { publicApi } from '../src/protocol/proto.ts';
import { keySlot, slotsOf } from '../src/shard/key-slot.ts';
import { startInProcess } from './support/in-process.ts';
import { freePorts } from './support/ports.ts';
import {
  findBinary,
  REFERENCES,
  type ReferenceClient,
  type ReferenceKind,
  type ServerProcess,
} from './support/references.ts';
import { printTable, writeResults } from './support/report.ts';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    ops: { type: 'string' },
    only: { type: 'string' },
    'in-flight': { type: 'string', default: '64,256' },
    rate: { type: 'string' },
    'cpu-prof': { type: 'string' },
    consistency: { type: 'string', default: 'LINEARIZABLE' },
    shards: { type: 'string', default: '16' },
  },
});
const numbers = (list: string | undefined) => (list ?? '').split(',').filter(Boolean).map(Number);
const OPERATIONS = Number(flags.ops ?? (flags.quick ? 5_000 : 40_000));
const IN_FLIGHT = numbers(flags['in-flight']);
const RATES = numbers(flags.rate);
const ONLY = flags.only?.split(',');
const CONSISTENCY = flags.consistency;
const KEYS = 100_000;
const SHARDS = Number(flags.shards);
const VALUE = Buffer.alloc(1024, 7);
/** A run with no reply for this long has lost a request. */
const STALL_MS = 30_000;
// Free ports by default: another benchmark or test on the machine must not meet this one's
// nodes (its clients would talk to them). RAFTCACHE_BENCH_PORT=p fixes them at p to p+3.
const BASE_PORT = process.env.RAFTCACHE_BENCH_PORT;
const ports = BASE_PORT ? [0, 1, 2, 3].map((i) => Number(BASE_PORT) + i) : await freePorts(4);
const nodes = [1, 2, 3].map((i) => ({ id: `n${i}`, address: `127.0.0.1:${ports[i - 1]}` }));

// biome-ignore lint/suspicious/noExplicitAny: generated clients and decoded replies
type Any = any;
type Op = 'set' | 'get';

function startCluster(): ChildProcess[] {
  const initial = nodes.map((n) => `${n.id}=${n.address}`).join(',');
  const main = path.join(import.meta.dirname, '..', 'src', 'server', 'main.ts');
  const profile = flags['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', flags['cpu-prof']] : [];
  return nodes.map((n) =>
    spawn(
      process.execPath,
      [
        ...profile,
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
        // A node's own errors (a crash) show on this process's stderr.
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, RAFTCACHE_LOG_LEVEL: 'warn' },
      },
    ),
  );
}

/** The echo process of the floor runs (see support/echo-node.ts). */
const ECHO_ADDRESS = `127.0.0.1:${ports[3]}`;
const clients = new Map(
  [...nodes.map((n) => n.address), ECHO_ADDRESS].map((address) => [
    address,
    new publicApi.Cache(address, grpc.credentials.createInsecure()) as Any,
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
  const deadline = performance.now() + 30_000;
  for (let shard = 0; shard < SHARDS; shard++) {
    const key = keyOfShard(shard);
    for (let attempt = 0; !leaders.has(shard); attempt++) {
      if (performance.now() > deadline) throw new Error(`no leader found for shard ${shard}`);
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

function histogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

/** What one run counts besides latencies. */
class Tally {
  readonly latencies = histogram();
  errors = 0;
  redirects = 0;
  writes = 0;
  readonly #entries = new Set<string>();

  record(startedMs: number): void {
    this.latencies.recordValue(Math.max(1, Math.round((performance.now() - startedMs) * 1000)));
  }

  /** A SET's version is its entry's index: distinct (shard, version) pairs count entries. */
  wrote(shard: number, version: string | number): void {
    this.writes++;
    this.#entries.add(`${shard}:${version}`);
  }

  get writesPerEntry(): number | undefined {
    return this.#entries.size > 0 ? this.writes / this.#entries.size : undefined;
  }
}

/**
 * A closed loop as an application runs one: `inFlight` workers, each awaiting `call` on the
 * next key (`index` counts from 0) before starting another; a call that throws counts as an
 * error. The row of the run, named `mode`.
 */
async function closedLoop(
  mode: string,
  inFlight: number,
  call: (key: string, index: number) => Promise<unknown>,
  tally = new Tally(),
  operations = OPERATIONS,
) {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < operations) {
      const index = next++;
      const t = performance.now();
      try {
        await call(keyAt(index), index);
      } catch {
        tally.errors++;
      }
      tally.record(t);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return summary(mode, String(inFlight), tally, performance.now() - started, operations);
}

/** The SDK as an application uses it: `inFlight` calls at a time, each awaited. */
async function runSdk(sdk: CacheClient, op: Op, inFlight: number) {
  const tally = new Tally();
  const before = sdk.metrics;
  const row = await closedLoop(
    `sdk ${op.toUpperCase()}`,
    inFlight,
    async (key) => {
      if (op === 'get') return sdk.get(key);
      const { version } = await sdk.set(key, VALUE);
      if (version !== undefined) tally.wrote(shardOf(key), version);
    },
    tally,
  );
  const after = sdk.metrics;
  const requests = after.pipelinedRequests - before.pipelinedRequests;
  const writes = after.pipelineWrites - before.pipelineWrites;
  return {
    ...row,
    requestsPerWrite: writes > 0 ? Math.round((requests / writes) * 10) / 10 : undefined,
  };
}

/** The leader hint of a not-leader answer, if this is one (and updates the leader table). */
function followHint(shard: number, code: number, leader: string | undefined): boolean {
  if (code !== grpc.status.FAILED_PRECONDITION || !leader) return false;
  leaders.set(shard, leader);
  return true;
}

async function runUnary(op: Op, inFlight: number) {
  const tally = new Tally();
  const method = op === 'set' ? 'Set' : 'Get';
  /** One request, sent again to the leader a not-leader answer names. */
  const call = async (key: string) => {
    const shard = shardOf(key);
    for (;;) {
      try {
        const reply = await unary(
          leaders.get(shard) as string,
          method,
          op === 'set' ? { key, value: VALUE } : { key, consistency: CONSISTENCY },
        );
        if (op === 'set') tally.wrote(shard, reply.version);
        return;
      } catch (error) {
        const e = error as grpc.ServiceError;
        const hint = e.metadata?.get(LEADER_METADATA_KEY)[0];
        if (!followHint(shard, e.code, typeof hint === 'string' ? hint : undefined)) throw error;
        tally.redirects++;
      }
    }
  };
  return closedLoop(`unary ${op.toUpperCase()}`, inFlight, call, tally);
}

/** Where a Pipeline run sends its requests. */
interface PipelineTarget {
  /** The rows' label: `pipeline` for the cluster, `echo` for the floor. */
  readonly label: string;
  /** The address for requests to a shard. */
  readonly addressOf: (shard: number) => string;
  /** Whether SET versions are raft indexes (so count log entries). */
  readonly versionsAreIndexes: boolean;
}

const CLUSTER: PipelineTarget = {
  label: 'pipeline',
  addressOf: (shard) => leaders.get(shard) as string,
  versionsAreIndexes: true,
};

const ECHO: PipelineTarget = {
  label: 'echo',
  addressOf: () => ECHO_ADDRESS,
  versionsAreIndexes: false,
};

/**
 * Pipeline streams, one per leader node. `pace` decides when request i may go: closed loop
 * (a new request as each reply comes back, `inFlight` at a time) or open loop (at a fixed
 * rate, whatever the replies do).
 */
async function runPipeline(
  op: Op,
  pace: { inFlight: number } | { rate: number },
  target = CLUSTER,
  operations = OPERATIONS,
) {
  const tally = new Tally();
  const streams = new Map<string, Any>();
  /** Tag → when its request was due, and its key's shard. */
  const pending = new Map<number, { due: number; shard: number; key: string }>();
  let next = 0;
  let done = 0;
  let maxOutstanding = 0;
  const started = performance.now();
  let lastReply = started;
  let watchdog: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve, reject) => {
    // A request never answered would hang the run: give up, saying so.
    watchdog = setInterval(() => {
      if (performance.now() - lastReply < STALL_MS) return;
      reject(new Error(`no reply for ${STALL_MS / 1000} s, ${pending.size} requests pending`));
    }, 1_000);
    const streamTo = (address: string) => {
      let stream = streams.get(address);
      if (stream) return stream;
      stream = clients.get(address).Pipeline();
      stream.on('data', (reply: Any) => {
        lastReply = performance.now();
        const tag = Number(reply.tag);
        const request = pending.get(tag) as { due: number; shard: number; key: string };
        if (reply.reply === 'status') {
          if (followHint(request.shard, reply.status.code, reply.status.leader)) {
            tally.redirects++;
            write(tag, request.key, request.shard);
            return;
          }
          tally.errors++;
        } else if (op === 'set' && target.versionsAreIndexes) {
          tally.wrote(request.shard, reply.set.version);
        }
        tally.record(request.due);
        pending.delete(tag);
        if (++done === operations) resolve();
        else if ('inFlight' in pace && next < operations) send(performance.now());
      });
      stream.on('error', (error: Error) =>
        reject(new Error(`the Pipeline stream to ${address} failed: ${error.message}`)),
      );
      streams.set(address, stream);
      return stream;
    };
    const write = (tag: number, key: string, shard: number) =>
      streamTo(target.addressOf(shard)).write(
        op === 'set'
          ? { tag, set: { key, value: VALUE } }
          : { tag, get: { key, consistency: CONSISTENCY } },
      );
    const send = (due: number) => {
      const tag = next++;
      const key = keyAt(tag);
      const shard = shardOf(key);
      pending.set(tag, { due, shard, key });
      maxOutstanding = Math.max(maxOutstanding, pending.size);
      write(tag, key, shard);
    };
    if ('inFlight' in pace) {
      for (let k = 0; k < pace.inFlight && next < operations; k++) send(performance.now());
      return;
    }
    const interval = 1000 / pace.rate;
    const tick = () => {
      const now = performance.now();
      while (next < operations && started + next * interval <= now) send(started + next * interval);
      if (next < operations) setTimeout(tick, 1);
    };
    tick();
  }).finally(() => clearInterval(watchdog));
  for (const stream of streams.values()) stream.end();
  const ms = performance.now() - started;
  const concurrency = 'inFlight' in pace ? String(pace.inFlight) : `${pace.rate}/s open`;
  return {
    ...summary(`${target.label} ${op.toUpperCase()}`, concurrency, tally, ms, operations),
    maxOutstanding,
  };
}

/** The baseline: requests handed straight to the leading host of their key's shard. */
async function runInProcess(op: Op, inFlight: number, cluster: ReturnType<typeof startInProcess>) {
  const tally = new Tally();
  const clientCpu = process.cpuUsage();
  const row = await closedLoop(
    `in-process ${op.toUpperCase()}`,
    inFlight,
    async (key) => {
      const host = await cluster.leaderFor(key);
      if (op === 'get') return host.get(key);
      const outcome = await host.set({ op: 'set', key, value: VALUE });
      if (outcome.status === 'applied') tally.wrote(host.shardOf(key), outcome.version);
    },
    tally,
  );
  const cpu = process.cpuUsage(clientCpu);
  return {
    ...row,
    nodeCpuUsPerOp: Math.round((cpu.user + cpu.system) / OPERATIONS),
    clientCpuUsPerOp: undefined,
  };
}

function summary(
  name: string,
  concurrency: string,
  tally: Tally,
  ms: number,
  operations = OPERATIONS,
) {
  const perEntry = tally.writesPerEntry;
  return {
    mode: name,
    concurrency,
    opsPerSecond: Math.round(operations / (ms / 1000)),
    p50Us: tally.latencies.getValueAtPercentile(50),
    p99Us: tally.latencies.getValueAtPercentile(99),
    p999Us: tally.latencies.getValueAtPercentile(99.9),
    errors: tally.errors,
    redirects: tally.redirects,
    writesPerEntry: perEntry === undefined ? undefined : Math.round(perEntry * 10) / 10,
  };
}

/** CPU ms a child process has used (user + system), from /proc; undefined elsewhere. */
function cpuMsOf(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime and stime (fields 14 and 15 of stat) in clock ticks, 100 per second on Linux.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

/** Runs `run`, adding the CPU µs per operation of the nodes and of this load generator. */
async function measured<T extends object>(
  children: readonly ChildProcess[],
  run: () => Promise<T>,
) {
  const nodesBefore = children.map((child) => cpuMsOf(child.pid));
  const clientBefore = process.cpuUsage();
  const result = await run();
  const client = process.cpuUsage(clientBefore);
  const nodesAfter = children.map((child) => cpuMsOf(child.pid));
  const nodeMs = nodesAfter.every((ms, i) => ms !== undefined && nodesBefore[i] !== undefined)
    ? nodesAfter.reduce(
        (sum: number, ms, i) => sum + (ms as number) - (nodesBefore[i] as number),
        0,
      )
    : undefined;
  return {
    ...result,
    nodeCpuUsPerOp: nodeMs === undefined ? undefined : Math.round((nodeMs * 1000) / OPERATIONS),
    clientCpuUsPerOp: Math.round((client.user + client.system) / OPERATIONS),
  };
}

const wanted = (mode: string) => ONLY === undefined || ONLY.includes(mode);

/** The runs against the three node processes. */
async function clusterRuns(children: readonly ChildProcess[]) {
  const results = [];
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  await learnLeaders();
  const sdk = new CacheClient({ seeds: nodes.map((n) => n.address) });
  await sdk.connect();
  // Warm-up, unmeasured: the first thousands of requests run before the JIT has compiled
  // the hot paths of the nodes and of this generator.
  for (const op of ['set', 'get'] as const) await runPipeline(op, { inFlight: 64 }, CLUSTER, 5_000);
  for (const inFlight of IN_FLIGHT) {
    for (const op of ['set', 'get'] as const) {
      if (!wanted(`pipeline-${op}`)) continue;
      results.push(await measured(children, () => runPipeline(op, { inFlight })));
      console.log(`  ${results.at(-1)?.mode} @${inFlight} done`);
    }
    for (const op of ['set', 'get'] as const) {
      if (!wanted(`unary-${op}`)) continue;
      results.push(await measured(children, () => runUnary(op, inFlight)));
      console.log(`  ${results.at(-1)?.mode} @${inFlight} done`);
    }
    for (const op of ['set', 'get'] as const) {
      if (!wanted(`sdk-${op}`)) continue;
      results.push(await measured(children, () => runSdk(sdk, op, inFlight)));
      console.log(`  ${results.at(-1)?.mode} @${inFlight} done`);
    }
  }
  for (const rate of RATES) {
    for (const op of ['set', 'get'] as const) {
      if (!wanted(`pipeline-${op}`)) continue;
      results.push(await measured(children, () => runPipeline(op, { rate })));
      console.log(`  ${results.at(-1)?.mode} at ${rate}/s done`);
    }
  }
  await sdk.close();
  return results;
}

/** The baseline runs, in this process. */
async function inProcessRuns() {
  const results = [];
  const cluster = startInProcess(SHARDS);
  for (const op of ['set', 'get'] as const) {
    if (!wanted(`in-process-${op}`)) continue;
    await runInProcess(op, 64, cluster); // warm-up
    for (const inFlight of IN_FLIGHT) {
      results.push(await runInProcess(op, inFlight, cluster));
      console.log(`  ${results.at(-1)?.mode} @${inFlight} done`);
    }
  }
  await cluster.close();
  return results;
}

/** Runs `run` while `processes` live; a process that exits before the end says so. */
async function whileRunning<T>(
  processes: readonly ServerProcess[],
  run: () => Promise<T>,
): Promise<T> {
  let stopping = false;
  const stop = () => {
    for (const { child, stopSignal } of processes) child.kill(stopSignal ?? 'SIGTERM');
  };
  // Should this process exit by a path that skips `finally` (an uncaught error, a signal),
  // they stop too.
  const interrupted = () => process.exit(1);
  process.once('exit', stop);
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const exited = processes.map(
    ({ name, child }) =>
      new Promise((resolve) =>
        child.once('exit', (code, signal) => {
          if (!stopping) console.error(`${name} exited (${code ?? signal}) mid-run`);
          resolve(code);
        }),
      ),
  );
  try {
    return await run();
  } finally {
    stopping = true;
    process.off('exit', stop);
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    stop();
    // A node writes its CPU profile as it exits.
    await Promise.all(exited);
  }
}

/** The floor runs: the same Pipeline load against one process that answers at once. */
async function echoRuns() {
  const echo = spawn(
    process.execPath,
    [path.join(import.meta.dirname, 'support', 'echo-node.ts'), ECHO_ADDRESS],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return whileRunning([{ name: 'the echo process', child: echo }], async () => {
    await new Promise<void>((resolve, reject) =>
      clients
        .get(ECHO_ADDRESS)
        .waitForReady(Date.now() + 30_000, (error?: Error) => (error ? reject(error) : resolve())),
    );
    const results = [];
    for (const op of ['set', 'get'] as const) await runPipeline(op, { inFlight: 64 }, ECHO, 5_000);
    const paces = [
      ...IN_FLIGHT.map((inFlight) => ({ inFlight })),
      ...RATES.map((rate) => ({ rate })),
    ];
    for (const pace of paces) {
      for (const op of ['set', 'get'] as const) {
        if (!wanted(`echo-${op}`)) continue;
        results.push(await measured([echo], () => runPipeline(op, pace, ECHO)));
        console.log(`  ${results.at(-1)?.mode} ${results.at(-1)?.concurrency} done`);
      }
    }
    return results;
  });
}

/**
 * The same closed loops against a reference system (support/references.ts), started for these
 * runs alone; a missing binary skips them, saying which package has it.
 */
async function referenceRuns(kind: ReferenceKind) {
  const binary = findBinary(kind.binary);
  if (!binary) {
    console.log(
      `  ${kind.name} runs skipped: no ${kind.binary} on PATH (apt-get install -y ${kind.debianPackage})`,
    );
    return [];
  }
  const reference = await kind.start(binary);
  process.once('exit', reference.cleanup);
  try {
    return await whileRunning(reference.processes, async () => {
      await reference.ready();
      const children = reference.processes.map((p) => p.child);
      const run = (client: ReferenceClient, op: Op, inFlight: number, operations?: number) =>
        closedLoop(
          kind.ops[op].label,
          inFlight,
          op === 'set' ? (key) => client.set(key, VALUE) : (key) => client.get(key),
          undefined,
          operations,
        );
      // Warm-up, unmeasured (this generator's JIT), and a check that a value written reads back.
      const warmUp = await reference.connect(64);
      try {
        for (const op of ['set', 'get'] as const) await run(warmUp, op, 64, 5_000);
        const value = await warmUp.get(keyAt(0));
        if (!value?.equals(VALUE)) throw new Error(`${kind.name} did not read back a value set`);
      } finally {
        warmUp.close();
      }
      const results = [];
      for (const inFlight of IN_FLIGHT) {
        const client = await reference.connect(inFlight);
        try {
          for (const op of ['set', 'get'] as const) {
            if (!wanted(kind.ops[op].mode)) continue;
            results.push(await measured(children, () => run(client, op, inFlight)));
            console.log(`  ${results.at(-1)?.mode} @${inFlight} done`);
          }
        } finally {
          client.close();
        }
      }
      return results;
    });
  } finally {
    process.off('exit', reference.cleanup);
    reference.cleanup();
  }
}

/**
 * raftcache's rows and the reference rows they are compared with, at each in-flight count.
 * etcd's KV API is unary only, so its client cost is that of raftcache's unary rows: those are
 * compared too, when they ran.
 */
const COMPARED = [
  ['pipeline SET', 'etcd Put'],
  ['pipeline GET', 'etcd Range'],
  ['unary SET', 'etcd Put'],
  ['unary GET', 'etcd Range'],
  ['pipeline SET', 'redis SET'],
  ['pipeline GET', 'redis GET'],
] as const;

/** raftcache ÷ reference, for ops/s and the nodes' CPU per op, where both rows ran. */
function ratios(
  rows: readonly {
    mode: string;
    concurrency: string;
    opsPerSecond: number;
    nodeCpuUsPerOp?: number;
  }[],
) {
  const ratio = (ours?: number, theirs?: number) =>
    ours !== undefined && theirs ? Number((ours / theirs).toPrecision(2)) : undefined;
  return COMPARED.flatMap(([raftcache, reference]) =>
    IN_FLIGHT.flatMap((inFlight) => {
      const row = (mode: string) =>
        rows.find((r) => r.mode === mode && r.concurrency === String(inFlight));
      const ours = row(raftcache);
      const theirs = row(reference);
      if (!ours || !theirs) return [];
      return [
        {
          raftcache,
          reference,
          inFlight,
          opsPerSecond: ratio(ours.opsPerSecond, theirs.opsPerSecond),
          nodeCpuPerOp: ratio(ours.nodeCpuUsPerOp, theirs.nodeCpuUsPerOp),
        },
      ];
    }),
  );
}

console.log(
  `cluster bench: 3 node processes, ${SHARDS} shards, ${OPERATIONS.toLocaleString('en-US')} ops per run, 1 KB values over ${KEYS.toLocaleString('en-US')} keys`,
);
const results = [];
if (['pipeline-set', 'pipeline-get', 'unary-set', 'unary-get', 'sdk-set', 'sdk-get'].some(wanted)) {
  const children = startCluster();
  const processes = children.map((child, i) => ({ name: `node ${nodes[i].id}`, child }));
  results.push(...(await whileRunning(processes, () => clusterRuns(children))));
}
for (const kind of REFERENCES) {
  if ([kind.ops.set.mode, kind.ops.get.mode].some(wanted)) {
    results.push(...(await referenceRuns(kind)));
  }
}
if (['echo-set', 'echo-get'].some(wanted)) results.push(...(await echoRuns()));
for (const client of clients.values()) client.close();
if (['in-process-set', 'in-process-get'].some(wanted)) results.push(...(await inProcessRuns()));
printTable(
  results.map((r) => ({
    mode: r.mode,
    'in flight': r.concurrency,
    'ops/s': r.opsPerSecond,
    'p50 µs': r.p50Us,
    'p99 µs': r.p99Us,
    'p999 µs': r.p999Us,
    errors: r.errors,
    redirects: r.redirects,
    'writes/entry': r.writesPerEntry ?? '',
    'req/write': 'requestsPerWrite' in r ? ((r.requestsPerWrite as number | undefined) ?? '') : '',
    'node CPU µs/op': r.nodeCpuUsPerOp ?? '',
    'client CPU µs/op': r.clientCpuUsPerOp ?? '',
  })),
);
console.log('targets (mission): 100,000 ops/s; p99 < 1 ms at 10,000 ops/s');
const compared = ratios(results);
if (compared.length > 0) {
  console.log(
    '\nraftcache ÷ reference (ops/s above 1: raftcache faster; CPU above 1: it costs more)',
  );
  printTable(
    compared.map((c) => ({
      raftcache: c.raftcache,
      reference: c.reference,
      'in flight': c.inFlight,
      'ops/s ×': c.opsPerSecond ?? '',
      'node CPU/op ×': c.nodeCpuPerOp ?? '',
    })),
  );
}
console.log(`written to ${writeResults('cluster', { runs: results, ratios: compared })}`);
