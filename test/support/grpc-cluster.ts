// Three nodes in the test's process, each one port for peers and the public API on loopback,
// serving the public services as a node does (strict decoding, per-method limits, the node's
// gRPC server options), over a founding map of `dataShards` shards and the metadata group.
import * as grpc from '@grpc/grpc-js';
import { foundingMap, METADATA_SHARD, slotTable } from '../../src/cluster/cluster-map.ts';
import { LEADER_METADATA_KEY } from '../../src/protocol/metadata.ts';
import { publicApi } from '../../src/protocol/proto.ts';
import { SeededRandom } from '../../src/raft/random.ts';
import { PUBLIC_SERVER_OPTIONS } from '../../src/server/grpc-limits.ts';
import { addPublicServices } from '../../src/server/public-services.ts';
import { MultiRaftHost } from '../../src/shard/multi-raft-host.ts';
import { SharedPort } from '../../src/transport/shared-port.ts';
import { TcpPeerTransport } from '../../src/transport/tcp-peer-transport.ts';
import { until } from './until.ts';

// biome-ignore lint/suspicious/noExplicitAny: replies as proto-loader decodes them
export type Reply = any;

export const NODE_NAMES = ['n1', 'n2', 'n3'] as const;

export class GrpcCluster {
  readonly names: readonly string[] = NODE_NAMES;
  readonly hosts = new Map<string, MultiRaftHost>();
  readonly addresses = new Map<string, string>();
  readonly #servers: grpc.Server[] = [];
  readonly #ports: SharedPort[] = [];
  readonly #clients = new Map<string, grpc.Client>();

  static async start(options: { dataShards?: number; capacityBytes?: number } = {}) {
    const cluster = new GrpcCluster();
    await cluster.#start(options.dataShards ?? 3, options.capacityBytes ?? 4 << 20);
    return cluster;
  }

  async #start(dataShards: number, capacityBytes: number): Promise<void> {
    const transports: TcpPeerTransport[] = [];
    const founding = foundingMap({
      clusterId: 'test',
      nodes: this.names.map((nodeId) => ({
        nodeId,
        address: '',
        region: 'local',
        capacityBytes,
        process: nodeId,
        incarnation: 1,
      })),
      dataShards,
      replicationFactor: 3,
    });
    const map = () => ({
      ...founding,
      nodes: founding.nodes.map((n) => ({ ...n, address: this.addresses.get(n.nodeId) ?? '' })),
    });
    for (const [i, node] of this.names.entries()) {
      const server = new grpc.Server(PUBLIC_SERVER_OPTIONS);
      const transport = new TcpPeerTransport({ node, clusterId: 'test' });
      transports.push(transport);
      const host = new MultiRaftHost({
        node,
        transport,
        placement: founding.shards,
        slotShards: slotTable(founding),
        capacityBytes,
        clock: { now: () => Date.now(), monotonic: () => performance.now() },
        random: new SeededRandom(i + 1),
      });
      addPublicServices(
        server,
        {
          host,
          addressOf: (n) => this.addresses.get(n),
        },
        { map, host },
      );
      const port = await SharedPort.listen('127.0.0.1:0', { grpc: server, peers: transport });
      this.#ports.push(port);
      this.addresses.set(node, `127.0.0.1:${port.port}`);
      this.#servers.push(server);
      this.hosts.set(node, host);
    }
    for (const transport of transports) transport.setPeerAddresses(this.addresses);
  }

  async close(): Promise<void> {
    for (const client of this.#clients.values()) client.close();
    await Promise.all([...this.hosts.values()].map((host) => host.close()));
    for (const port of this.#ports) port.close();
    for (const server of this.#servers) server.forceShutdown();
  }

  host(node: string): MultiRaftHost {
    const host = this.hosts.get(node);
    if (host === undefined) throw new Error(`no node ${node}`);
    return host;
  }

  address(node: string): string {
    const address = this.addresses.get(node);
    if (address === undefined) throw new Error(`no node ${node}`);
    return address;
  }

  /** One call of the Cache (or Admin) service at `node`. */
  call(node: string, method: string, request: object, service: 'Cache' | 'Admin' = 'Cache') {
    const key = `${service}@${node}`;
    let client = this.#clients.get(key);
    if (client === undefined) {
      client = new publicApi[service](this.address(node), grpc.credentials.createInsecure());
      this.#clients.set(key, client);
    }
    const methods = client as unknown as Record<
      string,
      (r: object, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v: Reply) => void) => void
    >;
    return new Promise<Reply>((resolve, reject) =>
      methods[method]?.(request, { deadline: Date.now() + 5_000 }, (error, reply) =>
        error ? reject(error) : resolve(reply),
      ),
    );
  }

  /** Calls any node, follows the not-leader hint, and waits out elections (UNAVAILABLE). */
  async callLeader(method: string, request: object): Promise<Reply> {
    let node = 'n1';
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        return await this.call(node, method, request);
      } catch (error) {
        const e = error as grpc.ServiceError;
        if (e.code === grpc.status.FAILED_PRECONDITION) {
          const leader = e.metadata.get(LEADER_METADATA_KEY)[0];
          const next = this.names[(this.names.indexOf(node) + 1) % this.names.length] ?? 'n1';
          node = [...this.addresses].find(([, a]) => a === leader)?.[0] ?? next;
        } else if (e.code === grpc.status.UNAVAILABLE) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        } else {
          throw error;
        }
      }
    }
    throw new Error(`no leader answered ${method}`);
  }

  /** The node whose replica leads `key`'s shard, once one does. */
  leaderOf(key: string): Promise<string> {
    return until(() => {
      for (const [node, host] of this.hosts) {
        const shardId = host.shardOf(key);
        if (host.shardIds.includes(shardId) && host.replica(shardId).isLeader) return node;
      }
      return undefined;
    }, 10_000);
  }

  /**
   * A follower of `key`'s shard that has applied up to `version`, left alone: the other
   * nodes' hosts are closed, and it has heard from no leader for `silentMs` when this resolves.
   */
  async cutOffFollower(key: string, version: number, silentMs: number): Promise<string> {
    const leader = await this.leaderOf(key);
    const follower = this.names.find((n) => n !== leader) ?? 'n1';
    const host = this.host(follower);
    const shardId = host.shardOf(key);
    await until(() => (host.stats(shardId).appliedIndex >= version ? true : undefined));
    for (const node of this.names) if (node !== follower) await this.host(node).close();
    await until(() => (host.stats(shardId).sinceLeaderContactMs > silentMs ? true : undefined));
    return follower;
  }

  /** A node leading some data shard, once one does. */
  someLeader(): Promise<string> {
    return until(() => {
      for (const [node, host] of this.hosts)
        if (host.shardIds.some((id) => id !== METADATA_SHARD && host.replica(id).isLeader))
          return node;
      return undefined;
    }, 10_000);
  }
}
