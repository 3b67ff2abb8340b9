// The public `Admin` service (proto/raftcache.proto): the cluster map clients route by, and
// statistics. Adding and removing nodes and rebalancing are declared in the contract and
// answer UNIMPLEMENTED until elastic membership lands.
import * as grpc from '@grpc/grpc-js';
import { type ClusterMap, METADATA_SHARD } from '../cluster/cluster-map.ts';
import { toStatus } from '../protocol/status.ts';
import { RejectedRequest } from '../protocol/strict-decoding.ts';
import { SLOT_COUNT } from '../shard/key-slot.ts';
import type { MultiRaftHost } from '../shard/multi-raft-host.ts';
import { gatherStats, type StatsRequest } from './stats-gather.ts';

export interface AdminServiceContext {
  /** The newest cluster map this node knows; none while it founds or joins its cluster. */
  readonly map: () => ClusterMap | undefined;
  /** The metadata group's leader hints, for shards this node holds no replica of. */
  readonly leaderHints?: () => readonly { readonly shardId: number; readonly node: string }[];
  /** This node's host: it knows the leaders of the shards it holds a replica of. */
  readonly host: MultiRaftHost;
}

const notJoined = {
  code: grpc.status.UNAVAILABLE,
  details: 'this node has not joined its cluster yet',
};

const noAddress = () => undefined;

/** `handler`, but a request that was not decoded (malformed, too large) is refused first. */
function decoded<T>(handler: grpc.handleUnaryCall<T, unknown>): grpc.handleUnaryCall<T, unknown> {
  return (call, done) => {
    if (call.request instanceof RejectedRequest) done(toStatus(call.request.error, noAddress));
    else handler(call, done);
  };
}

const unimplemented = decoded((_call, done) =>
  done({ code: grpc.status.UNIMPLEMENTED, details: 'elastic membership is not available yet' }),
);

export function adminServiceHandlers(
  context: AdminServiceContext,
): grpc.UntypedServiceImplementation {
  const { host } = context;
  return {
    ClusterMap: decoded((_call, done) => {
      const map = context.map();
      if (map === undefined) {
        done(notJoined);
        return;
      }
      const hosted = new Set(host.shardIds);
      const hints = new Map((context.leaderHints?.() ?? []).map((h) => [h.shardId, h.node]));
      // This node's own replica knows best; the metadata group's hint otherwise.
      const leaderOf = (shardId: number) =>
        (hosted.has(shardId) ? host.stats(shardId).leaderNode : undefined) ??
        hints.get(shardId) ??
        '';
      done(null, {
        cluster_id: map.clusterId,
        epoch: map.epoch,
        slot_count: SLOT_COUNT,
        nodes: map.nodes.map((m) => {
          const [hostName, port] = splitAddress(m.address);
          return {
            node_id: m.nodeId,
            host: hostName,
            port,
            capacity_bytes: m.capacityBytes,
            region: m.region,
            status: 'up',
          };
        }),
        // Clients route to data shards only; the metadata group owns no slots.
        shards: map.shards
          .filter((shard) => shard.shardId !== METADATA_SHARD)
          .map((shard) => ({
            shard_id: shard.shardId,
            slots: shard.slots,
            replicas: shard.replicas.map((r) => r.node),
            leader: leaderOf(shard.shardId),
          })),
      });
    }),
    GetStats: decoded((call: grpc.ServerUnaryCall<StatsRequest, unknown>, done) => {
      const map = context.map();
      if (map === undefined) {
        done(notJoined);
        return;
      }
      gatherStats(call.request, host, map).then(
        (reply) => done(null, reply),
        (error: unknown) => done(toStatus(error, noAddress)),
      );
    }),
    AddNode: unimplemented,
    RemoveNode: unimplemented,
    Rebalance: unimplemented,
  };
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon).replace(/^\[|\]$/g, ''), Number(address.slice(colon + 1))];
}
