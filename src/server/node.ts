import { randomInt } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ClusterMembership } from '../cluster/cluster-membership.ts';
import { addMembershipService } from '../cluster/membership-rpc.ts';
import { MetadataStore, metadataNeverEvicts } from '../cluster/metadata.ts';
import { SeededRandom } from '../raft/random.ts';
import { MultiRaftHost } from '../shard/multi-raft-host.ts';
import { SharedPort } from '../transport/shared-port.ts';
import { TcpPeerTransport } from '../transport/tcp-peer-transport.ts';
import { ConfigError, type NodeConfig } from './config.ts';
import { evictionPolicyFactory } from './eviction-plugins.ts';
import { PUBLIC_SERVER_OPTIONS } from './grpc-limits.ts';
import { watchLoopDelay } from './loop-delay-watch.ts';
import { addPublicServices } from './public-services.ts';

export interface RunningNode {
  readonly port: number;
  readonly clusterId: string;
  /** Hands leadership away (as on SIGTERM), then stops. */
  close(): Promise<void>;
}

/** How long a graceful shutdown waits for the shards this node leads to find other leaders. */
const HAND_OFF_MS = 3_000;

/**
 * Starts a node: one port for the public API and the membership service (gRPC) and for the
 * peer links; then founds the cluster (`--bootstrap`) or joins it through `--seeds`, and
 * resolves once the node holds the cluster map and serves.
 */
export async function startNode(config: NodeConfig, logger: Logger): Promise<RunningNode> {
  const founders = foundersOf(config);
  // A plugin that cannot load stops the node at start, with the plugin's own error.
  const clock = { now: () => Date.now(), monotonic: () => performance.now() };
  const createPolicy = await evictionPolicyFactory(config.eviction, {
    logger,
    clock: clock.monotonic,
  });
  const server = new grpc.Server(PUBLIC_SERVER_OPTIONS);
  const transport = new TcpPeerTransport({
    node: config.nodeId,
    peers: founders,
    overrides: new Map(config.peerAddresses.map((link) => link.split('=') as [string, string])),
    logger,
  });
  const host = new MultiRaftHost({
    node: config.nodeId,
    transport,
    capacityBytes: config.capacityBytes,
    policy: metadataNeverEvicts(createPolicy),
    clock,
    random: new SeededRandom(randomInt(2 ** 31)),
    tickMs: config.tickMs,
    electionTicks: config.electionTicks,
    heartbeatTicks: config.heartbeatTicks,
    leaseDriftMarginMs: config.leaseDriftMarginMs,
    logger,
  });
  // Unique per process: a restarted node is told from its earlier life.
  const incarnationTag = `${config.nodeId}-${randomInt(2 ** 31).toString(36)}`;
  const membership = new ClusterMembership({
    self: {
      nodeId: config.nodeId,
      address: config.advertise,
      region: config.region,
      capacityBytes: config.capacityBytes,
      process: incarnationTag,
    },
    bootstrap: config.bootstrap,
    founders,
    seeds: config.seeds,
    dataShards: config.shards,
    replicationFactor: config.replicationFactor,
    host,
    transport,
    metadata: new MetadataStore(host),
    logger,
  });
  addMembershipService(server, membership);
  const addressOf = (node: string) => membership.map?.nodes.find((n) => n.nodeId === node)?.address;
  addPublicServices(
    server,
    {
      host,
      addressOf,
    },
    { map: () => membership.map, leaderHints: () => membership.leaders(), host },
  );
  const listener = await SharedPort.listen(
    config.listen,
    { grpc: server, peers: transport },
    { logger },
  );
  logger.info({ node: config.nodeId, listen: config.listen }, 'node listening');
  const stopWatch = watchLoopDelay({
    logger,
    electionTimeoutMs: config.electionTicks * config.tickMs,
  });
  const stop = async () => {
    membership.stop();
    stopWatch();
    await host.close();
    listener.close();
    server.forceShutdown();
  };
  let map: Awaited<ReturnType<ClusterMembership['start']>>;
  try {
    map = await membership.start();
  } catch (error) {
    await stop();
    throw error;
  }
  logger.info(
    { node: config.nodeId, clusterId: map.clusterId, shards: host.shardIds },
    'node started',
  );

  return {
    port: listener.port,
    clusterId: map.clusterId,
    async close() {
      const handedOff = await host.handOffLeadership(HAND_OFF_MS);
      logger.info({ node: config.nodeId, handedOff }, 'node stopping');
      await stop();
    },
  };
}

/** The founders, `nodeId` → address, from `--initial-nodes` (this node alone without it). */
function foundersOf(config: NodeConfig): Map<string, string> {
  if (!config.bootstrap) return new Map();
  const entries =
    config.initialNodes.length > 0 ? config.initialNodes : [`${config.nodeId}=${config.advertise}`];
  const founders = new Map<string, string>();
  for (const entry of entries) {
    const [nodeId = '', address = ''] = entry.split('=');
    if (founders.has(nodeId)) throw new ConfigError([`--initial-nodes names ${nodeId} twice`]);
    founders.set(nodeId, address);
  }
  if (!founders.has(config.nodeId)) {
    throw new ConfigError([`--initial-nodes must include this node (${config.nodeId})`]);
  }
  return founders;
}
