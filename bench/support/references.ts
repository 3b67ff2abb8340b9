// bench:cluster's reference systems, started here as local processes on loopback ports so that
// raftcache's numbers come with ratios measured in the same run on the same machine: etcd (a
// 3-member Raft cluster, as raftcache's shards are) and Redis (one unreplicated process: the
// ceiling of a cache on this machine). Nothing is installed from here: a missing binary skips
// its runs.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Redis } from 'ioredis';
import { freePorts } from './ports.ts';

/** A call with no answer for this long fails (counted as an error) rather than hang a run. */
const CALL_TIMEOUT_MS = 30_000;
/** How long a reference may take to serve after its start. */
const READY_TIMEOUT_MS = 30_000;

/** A server process the bench started, and stops when its runs end. */
export interface ServerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** How to stop it: SIGTERM unless said otherwise. */
  readonly stopSignal?: NodeJS.Signals;
}

export interface ReferenceClient {
  set(key: string, value: Buffer): Promise<unknown>;
  /** The key's value, or null when it has none. */
  get(key: string): Promise<Buffer | null>;
  close(): void;
}

export interface Reference {
  /** Its server processes: whose CPU is measured, and which are stopped after the runs. */
  readonly processes: readonly ServerProcess[];
  /** Resolves once it serves requests. */
  ready(): Promise<void>;
  /** A connected client for `inFlight` calls at a time. */
  connect(inFlight: number): Promise<ReferenceClient>;
  /** Frees what outlives the processes (etcd's data dirs), once they have exited. */
  cleanup(): void;
}

/** One operation of a reference: its `--only` mode and its rows' label. */
interface ReferenceOp {
  readonly mode: string;
  readonly label: string;
}

export interface ReferenceKind {
  readonly name: string;
  readonly binary: string;
  /** The Debian package that has the binary. */
  readonly debianPackage: string;
  readonly ops: { readonly set: ReferenceOp; readonly get: ReferenceOp };
  readonly start: (binary: string) => Promise<Reference>;
}

/** The binary's path on PATH, if it is there. */
export function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {}
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// biome-ignore lint/suspicious/noExplicitAny: generated clients and decoded replies
type Any = any;

const etcdApi = grpc.loadPackageDefinition(
  loadSync(path.join(import.meta.dirname, 'etcd.proto'), {
    keepCase: true,
    longs: String,
    defaults: true,
  }),
).etcdserverpb as Any;

function unary(client: Any, method: string, request: object, timeoutMs: number): Promise<Any> {
  return new Promise((resolve, reject) =>
    client[method](
      request,
      { deadline: Date.now() + timeoutMs },
      (error: grpc.ServiceError | null, reply: Any) => (error ? reject(error) : resolve(reply)),
    ),
  );
}

/**
 * Three etcd members on loopback ports, their data dirs in a fresh directory on tmpfs
 * (/dev/shm) so that fsync costs next to nothing: raftcache keeps its log in memory.
 */
async function startEtcd(binary: string): Promise<Reference> {
  const ports = await freePorts(6);
  const members = ['e1', 'e2', 'e3'].map((name, i) => ({
    name,
    client: `127.0.0.1:${ports[i]}`,
    peer: `http://127.0.0.1:${ports[i + 3]}`,
  }));
  const dir = mkdtempSync(
    path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'raftcache-bench-etcd-'),
  );
  const initialCluster = members.map((m) => `${m.name}=${m.peer}`).join(',');
  const token = `bench-${randomUUID()}`;
  const processes = members.map((m) => ({
    name: `etcd ${m.name}`,
    // Its data is thrown away; on SIGTERM a leader whose peers stop at the same time waits
    // seconds for a leadership transfer that cannot happen.
    stopSignal: 'SIGKILL' as const,
    child: spawn(
      binary,
      [
        ['--name', m.name],
        ['--data-dir', path.join(dir, m.name)],
        ['--listen-client-urls', `http://${m.client}`],
        ['--advertise-client-urls', `http://${m.client}`],
        ['--listen-peer-urls', m.peer],
        ['--initial-advertise-peer-urls', m.peer],
        ['--initial-cluster', initialCluster],
        ['--initial-cluster-state', 'new'],
        ['--initial-cluster-token', token],
        ['--logger', 'zap'],
        ['--log-outputs', 'stderr'],
        ['--log-level', 'error'],
      ].flat(),
      { stdio: ['ignore', 'ignore', 'inherit'] },
    ),
  }));
  let leader: string | undefined;

  /** The member that every Status names as leader, once one does. */
  const findLeader = async (): Promise<string | undefined> => {
    const clients = members.map(
      (m) => new etcdApi.Maintenance(m.client, grpc.credentials.createInsecure()),
    );
    try {
      const statuses = await Promise.all(
        clients.map((client) => unary(client, 'Status', {}, 1_000).catch(() => undefined)),
      );
      const named = statuses.find((s) => s && s.leader !== '0')?.leader;
      const index = statuses.findIndex((s) => s?.header.member_id === named);
      return index >= 0 ? members[index].client : undefined;
    } finally {
      for (const client of clients) client.close();
    }
  };

  return {
    processes,
    async ready() {
      const deadline = performance.now() + READY_TIMEOUT_MS;
      for (;;) {
        leader = await findLeader();
        if (leader) return;
        if (performance.now() > deadline) throw new Error('the etcd cluster elected no leader');
        await sleep(100);
      }
    },
    // Puts and Ranges both go to the leader, learned once by `ready` (Status): a Put there
    // skips a forwarding hop, and a linearizable Range there its ReadIndex round trip to the
    // leader, as raftcache's raw requests go to each shard's leader. Should the leader move
    // mid-run, the members forward, so the run goes on (slower) rather than fail.
    async connect(inFlight) {
      if (!leader) throw new Error('etcd: connect before ready');
      // grpc-js multiplexes calls on a channel's connection: one channel per 32 in flight, each
      // with a subchannel (connection) of its own rather than one shared from the global pool.
      const channels = Array.from(
        { length: Math.max(1, Math.ceil(inFlight / 32)) },
        () =>
          new etcdApi.KV(leader, grpc.credentials.createInsecure(), {
            'grpc.use_local_subchannel_pool': 1,
          }),
      );
      await Promise.all(
        channels.map(
          (channel) =>
            new Promise<void>((resolve, reject) =>
              channel.waitForReady(Date.now() + READY_TIMEOUT_MS, (error?: Error) =>
                error ? reject(error) : resolve(),
              ),
            ),
        ),
      );
      let next = 0;
      const call = (method: string, request: object) =>
        unary(channels[next++ % channels.length], method, request, CALL_TIMEOUT_MS);
      return {
        set: (key, value) => call('Put', { key: Buffer.from(key), value }),
        // serializable false (the default): linearizable, as raftcache's default GET.
        get: async (key) => (await call('Range', { key: Buffer.from(key) })).kvs[0]?.value ?? null,
        close: () => {
          for (const channel of channels) channel.close();
        },
      };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Resolves once something accepts TCP connections on the loopback port. */
async function portOpen(port: number): Promise<void> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (performance.now() > deadline) throw new Error(`nothing listens on port ${port}`);
    await sleep(50);
  }
}

/** One redis-server, no persistence (no RDB snapshots, no append-only file). */
async function startRedis(binary: string): Promise<Reference> {
  const [port] = await freePorts(1);
  const child = spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return {
    processes: [{ name: 'redis-server', child }],
    ready: () => portOpen(port),
    // One connection whatever the in-flight count: ioredis's auto-pipelining writes the
    // commands issued in one event-loop turn together, as the SDK does on its streams.
    async connect() {
      const redis = new Redis({
        host: '127.0.0.1',
        port,
        enableAutoPipelining: true,
        commandTimeout: CALL_TIMEOUT_MS,
      });
      await redis.ping();
      return {
        set: (key, value) => redis.set(key, value),
        get: (key) => redis.getBuffer(key),
        close: () => redis.disconnect(),
      };
    },
    cleanup: () => {},
  };
}

export const REFERENCES: readonly ReferenceKind[] = [
  {
    name: 'etcd',
    binary: 'etcd',
    debianPackage: 'etcd-server',
    ops: {
      set: { mode: 'etcd-put', label: 'etcd Put' },
      get: { mode: 'etcd-get', label: 'etcd Range' },
    },
    start: startEtcd,
  },
  {
    name: 'redis',
    binary: 'redis-server',
    debianPackage: 'redis-server',
    ops: {
      set: { mode: 'redis-set', label: 'redis SET' },
      get: { mode: 'redis-get', label: 'redis GET' },
    },
    start: startRedis,
  },
];
