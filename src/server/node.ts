import { createHash, randomInt } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { loadPolicyFactory } from '../cache/plugin-loader.ts';
import { planShards } from '../cluster/placement.ts';
import { SeededRandom } from '../raft/random.ts';
import { MultiRaftHost } from '../shard/multi-raft-host.ts';
import { bind, GrpcPeerTransport, SERVER_OPTIONS } from '../transport/grpc-peer-transport.ts';
import { adminServiceHandlers, type ClusterMember } from './admin-service.ts';
import { cacheServiceHandlers } from './cache-service.ts';
import { ConfigError, type NodeConfig } from './config.ts';
import { watchLoopDelay } from './loop-delay-watch.ts';
import { publicApi } from './proto.ts';

export interface RunningNode {
  readonly port: number;
  readonly clusterId: string;
  /** Hands leadership away (as on SIGTERM), then stops. */
  close(): Promise<void>;
}

/** How long a graceful shutdown waits for the shards this node leads to find other leaders. */
const HAND_OFF_MS = 3_000;

/**
 * Starts a node of a cluster bootstrapped from a fixed list of nodes (`--bootstrap
 * --initial-nodes`): every node computes the same placement from the same list, so the
 * cluster map needs no agreement yet. One gRPC server serves the public API and the peers.
 */
export async function startNode(config: NodeConfig, logger: Logger): Promise<RunningNode> {
  if (!config.bootstrap) {
    throw new ConfigError([
      'joining a running cluster through --seeds is not available yet: use --bootstrap --initial-nodes',
    ]);
  }
  const members = membersOf(config);
  const names = members.map((m) => m.nodeId);
  // The cluster's identity follows from its founding list: the same list, the same cluster.
  const clusterId = `rc-${createHash('sha256')
    .update(names.map((n, i) => `${n}=${members[i].address}`).join(','))
    .digest('hex')
    .slice(0, 12)}`;
  const plan = planShards(
    members.map((m) => ({ nodeId: m.nodeId, region: m.region })),
    config.shards,
    Math.min(config.replicationFactor, members.length),
  );
  const placement = plan.map((shard) => ({
    shardId: shard.shardId,
    replicas: shard.replicas.map((node) => ({ replicaId: names.indexOf(node) + 1, node })),
  }));
  // Every replica of a shard has the same capacity: the node's, shared by the most replicas any node holds.
  const mostReplicas = Math.max(
    ...names.map((n) => plan.filter((s) => s.replicas.includes(n)).length),
  );
  const shardCapacity = Math.floor(config.capacityBytes / mostReplicas);

  const peers = new Map(members.map((m) => [m.nodeId, m.address]));
  for (const link of config.peerAddresses) {
    const [node, address] = link.split('=');
    peers.set(node, address);
  }
  // A plugin that cannot load stops the node at start, with the plugin's own error.
  const createPolicy = await loadPolicyFactory(config.eviction);
  const server = new grpc.Server(SERVER_OPTIONS);
  const transport = new GrpcPeerTransport(server, { node: config.nodeId, clusterId, peers });
  const host = new MultiRaftHost({
    node: config.nodeId,
    transport,
    placement,
    capacityBytes: shardCapacity,
    policy: () => createPolicy(),
    clock: { now: () => Date.now(), monotonic: () => performance.now() },
    random: new SeededRandom(randomInt(2 ** 31)),
    tickMs: config.tickMs,
    electionTicks: config.electionTicks,
    heartbeatTicks: config.heartbeatTicks,
    leaseDriftMarginMs: config.leaseDriftMarginMs,
  });
  let writes = 0;
  const writer = `node-${config.nodeId}-${randomInt(2 ** 31).toString(36)}`;
  server.addService(
    publicApi.Cache.service,
    cacheServiceHandlers({
      host,
      addressOf: (node) => members.find((m) => m.nodeId === node)?.address,
      nextWriteId: () => ({ clientId: writer, seq: ++writes }),
    }),
  );
  server.addService(
    publicApi.Admin.service,
    adminServiceHandlers({ clusterId, members, plan, host }),
  );
  const port = await bind(server, config.listen);
  const stopWatch = watchLoopDelay({
    logger,
    electionTimeoutMs: config.electionTicks * config.tickMs,
  });
  logger.info(
    { node: config.nodeId, listen: config.listen, clusterId, shards: host.shardIds },
    'node started',
  );

  return {
    port,
    clusterId,
    async close() {
      const handedOff = await host.handOffLeadership(HAND_OFF_MS);
      logger.info({ node: config.nodeId, handedOff }, 'node stopping');
      stopWatch();
      await host.close();
      server.forceShutdown();
    },
  };
}

/** The founding nodes, in a fixed order (by id), from `--initial-nodes id=host:port,...` (alone, without it). */
function membersOf(config: NodeConfig): ClusterMember[] {
  const founders =
    config.initialNodes.length > 0 ? config.initialNodes : [`${config.nodeId}=${config.advertise}`];
  // Regions are not shared yet (that needs the metadata group): every node plans as if all
  // were in one, so that all compute the same placement.
  const members = founders.map((entry) => {
    const [nodeId, address] = entry.split('=');
    return { nodeId, address, capacityBytes: config.capacityBytes, region: 'default' };
  });
  const self = members.find((m) => m.nodeId === config.nodeId);
  if (!self) throw new ConfigError([`--initial-nodes must include this node (${config.nodeId})`]);
  if (new Set(members.map((m) => m.nodeId)).size !== members.length) {
    throw new ConfigError(['--initial-nodes names a node twice']);
  }
  return members.sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
}
