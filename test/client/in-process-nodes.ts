// Three nodes in this process, each one loopback port for peers and the public API (real
// gRPC, real peer links), sharing a wall clock the test can move forward: the leader's
// clock is what session expiry runs on, so a test can pass ten idle minutes at once. Each
// node has a reply-stalling proxy in front, for clients that should lose answers.
import * as grpc from '@grpc/grpc-js';
import { type ClusterMap, foundingMap, slotTable } from '../../src/cluster/cluster-map.ts';
import { publicApi } from '../../src/protocol/proto.ts';
import { SeededRandom } from '../../src/raft/random.ts';
import { adminServiceHandlers } from '../../src/server/admin-service.ts';
import { cacheServiceHandlers } from '../../src/server/cache-service.ts';
import { MultiRaftHost } from '../../src/shard/multi-raft-host.ts';
import { GRPC_SERVER_OPTIONS, SharedPort } from '../../src/transport/shared-port.ts';
import { TcpPeerTransport } from '../../src/transport/tcp-peer-transport.ts';
import { LinkProxy } from '../support/link-proxy.ts';
import { until } from '../support/until.ts';

const NAMES = ['n1', 'n2', 'n3'] as const;

export class InProcessNodes {
  readonly hosts = new Map<string, MultiRaftHost>();
  /** Node name → its address. */
  readonly addresses = new Map<string, string>();
  /** Node address → the address of its proxy (a client's `addressMap`). */
  readonly viaProxies: Record<string, string> = {};
  readonly proxies: LinkProxy[] = [];
  /** Added to the real clock of every node. */
  clockOffsetMs = 0;
  readonly #servers: grpc.Server[] = [];
  readonly #ports: SharedPort[] = [];

  static async start(dataShards = 3): Promise<InProcessNodes> {
    const nodes = new InProcessNodes();
    await nodes.#start(dataShards);
    return nodes;
  }

  get seeds(): string[] {
    return [...this.addresses.values()];
  }

  host(node: string): MultiRaftHost {
    return this.hosts.get(node) as MultiRaftHost;
  }

  /** The node whose replica of `shardId` leads, once there is one. */
  leaderOf(shardId: number): Promise<string> {
    return until(
      () => NAMES.find((node) => this.host(node).stats(shardId).role === 'leader'),
      10_000,
    );
  }

  stallReplies(): void {
    for (const proxy of this.proxies) proxy.stallReplies();
  }

  heal(): void {
    for (const proxy of this.proxies) proxy.heal();
  }

  async close(): Promise<void> {
    for (const proxy of this.proxies) proxy.close();
    await Promise.all([...this.hosts.values()].map((host) => host.close()));
    for (const port of this.#ports) port.close();
    for (const server of this.#servers) server.forceShutdown();
  }

  async #start(dataShards: number): Promise<void> {
    const founding = foundingMap({
      clusterId: 'sessions',
      nodes: NAMES.map((nodeId) => ({
        nodeId,
        address: '',
        region: 'local',
        capacityBytes: 16 << 20,
        process: nodeId,
        incarnation: 1,
      })),
      dataShards,
      replicationFactor: 3,
    });
    const map = (): ClusterMap => ({
      ...founding,
      nodes: founding.nodes.map((n) => ({ ...n, address: this.addresses.get(n.nodeId) ?? '' })),
    });
    const transports: TcpPeerTransport[] = [];
    for (const [i, node] of NAMES.entries()) {
      const server = new grpc.Server(GRPC_SERVER_OPTIONS);
      const transport = new TcpPeerTransport({ node, clusterId: 'sessions' });
      transports.push(transport);
      const host = new MultiRaftHost({
        node,
        transport,
        placement: founding.shards,
        slotShards: slotTable(founding),
        capacityBytes: 16 << 20,
        clock: { now: () => Date.now() + this.clockOffsetMs, monotonic: () => performance.now() },
        random: new SeededRandom(i + 1),
      });
      server.addService(publicApi.Admin.service, adminServiceHandlers({ map, host }));
      server.addService(
        publicApi.Cache.service,
        cacheServiceHandlers({ host, addressOf: (n) => this.addresses.get(n) }),
      );
      const port = await SharedPort.listen('127.0.0.1:0', { grpc: server, peers: transport });
      const address = `127.0.0.1:${port.port}`;
      this.addresses.set(node, address);
      const proxy = await LinkProxy.start(address);
      this.proxies.push(proxy);
      this.viaProxies[address] = proxy.address;
      this.#ports.push(port);
      this.#servers.push(server);
      this.hosts.set(node, host);
    }
    for (const transport of transports) transport.setPeerAddresses(this.addresses);
  }
}
