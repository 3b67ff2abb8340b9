// Real node processes on loopback for the tests: a cluster started as `npm start` would (one
// process per node, `--bootstrap --initial-nodes`), and plain `@grpc/grpc-js` calls against
// it that follow the documented not-leader hint.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LEADER_METADATA_KEY } from '../../src/protocol/metadata.ts';
import { publicApi } from '../../src/protocol/proto.ts';

const main = path.join(import.meta.dirname, '../../src/server/main.ts');

/**
 * Ports handed out for nodes: below Linux's ephemeral range (32768 up), from which the OS
 * gives `listen(0)` servers and outgoing connections their ports. A port taken from that
 * range and released could be given to another test's socket before the node binds it.
 */
const NODE_PORTS = { first: 20_000, count: 12_000 };

/** A free loopback port (tried, then released for the node to take). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = NODE_PORTS.first + Math.floor(Math.random() * NODE_PORTS.count);
    if (await canListen(port)) return port;
  }
}

/** Whether a server could listen on `port` now (it is closed again at once). */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer()
      .once('error', () => resolve(false))
      .listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

export interface NodeProcess {
  readonly id: string;
  readonly address: string;
  process: ChildProcess;
}

export interface ProcessClusterOptions {
  /** Node ids (default n1, n2, n3). */
  readonly ids?: readonly string[];
  /** Flags every node gets besides its identity (e.g. `--shards 4`). */
  readonly args?: readonly string[];
  /** Flags of one node, given every node's address (e.g. its `--peer-addresses`). */
  readonly argsOf?: (
    id: string,
    addresses: ReadonlyMap<string, string>,
  ) => readonly string[] | Promise<readonly string[]>;
}

/** The nodes of a cluster of separate processes, and what a test does to them. */
export class ProcessCluster {
  readonly nodes: NodeProcess[];
  readonly #args: ReadonlyMap<string, readonly string[]>;

  private constructor(nodes: NodeProcess[], args: ReadonlyMap<string, readonly string[]>) {
    this.nodes = nodes;
    this.#args = args;
  }

  static async start(options: ProcessClusterOptions = {}): Promise<ProcessCluster> {
    const ids = options.ids ?? ['n1', 'n2', 'n3'];
    const addresses: string[] = [];
    for (const _ of ids) addresses.push(`127.0.0.1:${await freePort()}`);
    const initial = ids.map((id, i) => `${id}=${addresses[i]}`).join(',');
    const common = ['--bootstrap', '--initial-nodes', initial, ...(options.args ?? [])];
    const byId = new Map(ids.map((id, i) => [id, addresses[i]]));
    const args = new Map<string, readonly string[]>();
    for (const id of ids) args.set(id, [...common, ...((await options.argsOf?.(id, byId)) ?? [])]);
    const nodes = ids.map((id, i) => ({
      id,
      address: addresses[i],
      process: spawnNode(id, addresses[i], args.get(id) ?? common),
    }));
    return new ProcessCluster(nodes, args);
  }

  get addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  node(address: string): NodeProcess {
    const node = this.nodes.find((n) => n.address === address);
    if (!node) throw new Error(`no node at ${address}`);
    return node;
  }

  /** Sends `signal` and, for one that ends the process, resolves with its exit code. */
  async signal(node: NodeProcess, signal: NodeJS.Signals): Promise<number | null> {
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') {
      node.process.kill(signal);
      return null;
    }
    const exited = new Promise<number | null>((resolve) =>
      node.process.once('exit', (code) => resolve(code)),
    );
    node.process.kill(signal);
    return exited;
  }

  /**
   * Starts a node again after it died, with the command line it had (`--bootstrap` included):
   * with no state, it must find that its cluster exists and rejoin it.
   */
  restart(node: NodeProcess): void {
    const args = this.#args.get(node.id);
    if (!args) throw new Error(`${node.id} is not a node of this cluster`);
    node.process = spawnNode(node.id, node.address, args);
  }

  /** Kills every process still running. */
  stop(): void {
    for (const node of this.nodes) node.process.kill('SIGKILL');
  }

  /** Plain gRPC calls to this cluster. */
  get calls(): ClusterCalls {
    return new ClusterCalls(() => this.addresses);
  }
}

export function spawnNode(id: string, address: string, args: readonly string[]): ChildProcess {
  return spawn(process.execPath, [main, '--node-id', id, '--listen', address, ...args], {
    stdio: 'ignore',
    env: { ...process.env, RAFTCACHE_LOG_LEVEL: 'warn' },
  });
}

// biome-ignore lint/suspicious/noExplicitAny: replies as proto-loader decodes them
type Reply = any;

/** Unary calls by plain `@grpc/grpc-js` clients, as a client in any language would make them. */
export class ClusterCalls {
  readonly #addresses: () => readonly string[];

  constructor(addresses: () => readonly string[]) {
    this.#addresses = addresses;
  }

  /** One call of the `Cache` (or `Admin`) service at `address`. */
  at(address: string, method: string, request: object, service: 'Cache' | 'Admin' = 'Cache') {
    // biome-ignore lint/suspicious/noExplicitAny: a generated client
    const client: any = new publicApi[service](address, grpc.credentials.createInsecure());
    return new Promise<Reply>((resolve, reject) =>
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
   * moment); says which node answered. Errors other than "not leader" and "unavailable"
   * are the answer and are thrown at once.
   */
  async leaderAt(method: string, request: object): Promise<{ reply: Reply; address: string }> {
    const addresses = this.#addresses();
    let address = addresses[0];
    for (let attempt = 0; attempt < 400; attempt++) {
      try {
        return { reply: await this.at(address, method, request), address };
      } catch (error) {
        const e = error as grpc.ServiceError;
        const retriable = [
          grpc.status.FAILED_PRECONDITION,
          grpc.status.UNAVAILABLE,
          grpc.status.DEADLINE_EXCEEDED,
        ];
        if (!retriable.includes(e.code)) throw error;
        const hint = e.metadata?.get(LEADER_METADATA_KEY)[0];
        address =
          typeof hint === 'string' && addresses.includes(hint)
            ? hint
            : addresses[(attempt + 1) % addresses.length];
        if (e.code !== grpc.status.FAILED_PRECONDITION)
          await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    throw new Error(`no node answered ${method}`);
  }

  async leader(method: string, request: object): Promise<Reply> {
    return (await this.leaderAt(method, request)).reply;
  }

  /**
   * The statistics of every shard replica on the node at `address`; with `stateDigest`, each
   * with the digest of its replicated state at its `applied_index`.
   */
  async shardStats(address: string, options: { stateDigest?: boolean } = {}): Promise<Reply[]> {
    const request = { scope: 'NODE', state_digest: options.stateDigest ?? false };
    return (await this.at(address, 'GetStats', request, 'Admin')).shards;
  }
}

/** Resident memory of a process, KiB. */
export function rssKiB(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1]);
}
