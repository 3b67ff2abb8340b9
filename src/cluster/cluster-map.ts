// The cluster map: which nodes make up the cluster, which shards exist, which slots each
// shard owns and which replicas (replica id on a node) it has. It lives in the metadata group
// (shard 0, a Raft group of its own) as one document that changes by compare-and-set, so
// every change is a new `epoch` agreed by a majority. Pure functions here; the metadata
// module reads and writes it.

import type { SlotRange } from '../shard/key-slot.ts';
import { SLOT_COUNT } from '../shard/key-slot.ts';
import { PlacementError, planShards } from './placement.ts';

/** The metadata group's shard id; data shards are numbered from 1. */
export const METADATA_SHARD = 0;

/** Nodes a cluster map holds at most (as many as a Raft group may have members). */
export const MAX_NODES = 1_024;

/** A node as its own configuration describes it (the mission's Node Config). */
export interface MapNode {
  readonly nodeId: string;
  /** The advertised address, `host:port`. */
  readonly address: string;
  readonly region: string;
  readonly capacityBytes: number;
  /** Names the process: a restarted node has a new one (a retried join, the same). */
  readonly process: string;
  /** Grows each time the node rejoins without its state (a restart with persistence off). */
  readonly incarnation: number;
}

export interface MapReplica {
  readonly replicaId: number;
  readonly node: string;
}

export interface MapShard {
  readonly shardId: number;
  /** Empty for the metadata group. */
  readonly slots: readonly SlotRange[];
  /** The replicas the shard should have; its leader changes the Raft configuration to match. */
  readonly replicas: readonly MapReplica[];
  /** Replica ids are never reused within a shard: a new incarnation gets the next one. */
  readonly nextReplicaId: number;
}

export interface ClusterMap {
  readonly clusterId: string;
  /** Grows by one with every change. */
  readonly epoch: number;
  readonly nodes: readonly MapNode[];
  /** The metadata group first, then the data shards by id. */
  readonly shards: readonly MapShard[];
}

export interface FoundingOptions {
  readonly clusterId: string;
  readonly nodes: readonly MapNode[];
  readonly dataShards: number;
  readonly replicationFactor: number;
}

/** What no process is: the founders' entries carry it, so any later join by one is a restart. */
export const FOUNDING_PROCESS = '';

/**
 * The map a new cluster starts with. The metadata group's replicas are on the first nodes by
 * id (every founder can compute them before it knows the others' configurations); the data
 * shards are placed across nodes and regions by `planShards`. Founders may have seen
 * different processes of a founder that restarted while founding: the map records none.
 */
export function foundingMap(options: FoundingOptions): ClusterMap {
  const nodes = [...options.nodes]
    .map((n) => ({ ...n, process: FOUNDING_PROCESS }))
    .sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
  const factor = Math.min(options.replicationFactor, nodes.length);
  const replicaIdOf = (node: string) => nodes.findIndex((n) => n.nodeId === node) + 1;
  const shard = (shardId: number, slots: readonly SlotRange[], on: readonly string[]) => ({
    shardId,
    slots,
    replicas: on.map((node) => ({ replicaId: replicaIdOf(node), node })),
    nextReplicaId: nodes.length + 1,
  });
  const plan = planShards(nodes, options.dataShards, factor);
  return {
    clusterId: options.clusterId,
    epoch: 1,
    nodes,
    shards: [
      shard(
        METADATA_SHARD,
        [],
        metadataVoters(
          nodes.map((n) => n.nodeId),
          factor,
        ),
      ),
      ...plan.map((p) => shard(p.shardId + 1, p.slots, p.replicas)),
    ],
  };
}

/** The nodes that found the metadata group: the first `factor` by id. */
export function metadataVoters(nodeIds: readonly string[], factor: number): string[] {
  return [...nodeIds].sort().slice(0, Math.max(1, factor));
}

/**
 * The map once `node` has joined. A node new to the cluster is added (it holds no replicas
 * until a rebalance moves some to it). A node the map already knows is one that restarted
 * without its state: each replica it held gets a fresh replica id, a new incarnation that
 * the shard's leader adds as a learner, promotes once caught up, and swaps for the old one.
 * The map itself when the same process joins again.
 */
export function withJoinedNode(map: ClusterMap, node: Omit<MapNode, 'incarnation'>): ClusterMap {
  const known = map.nodes.find((n) => n.nodeId === node.nodeId);
  // The same process asking again (its first answer was lost): it is in already.
  if (known?.process === node.process) return map;
  if (known === undefined) {
    if (map.nodes.length >= MAX_NODES)
      throw new PlacementError(`the cluster map holds ${MAX_NODES} nodes, its most`);
    return {
      ...map,
      epoch: map.epoch + 1,
      nodes: [...map.nodes, { ...node, incarnation: 1 }],
    };
  }
  return {
    ...map,
    epoch: map.epoch + 1,
    nodes: map.nodes.map((n) =>
      n.nodeId === node.nodeId ? { ...node, incarnation: known.incarnation + 1 } : n,
    ),
    shards: map.shards.map((shard) => {
      if (!shard.replicas.some((r) => r.node === node.nodeId)) return shard;
      return {
        ...shard,
        replicas: shard.replicas.map((r) =>
          r.node === node.nodeId ? { replicaId: shard.nextReplicaId, node: r.node } : r,
        ),
        nextReplicaId: shard.nextReplicaId + 1,
      };
    }),
  };
}

/** The shard that owns each slot (`SLOT_COUNT` long). */
export function slotTable(map: ClusterMap): number[] {
  const table: number[] = new Array(SLOT_COUNT).fill(-1);
  for (const shard of map.shards)
    for (const { first, last } of shard.slots) table.fill(shard.shardId, first, last + 1);
  return table;
}

export function nodeOf(map: ClusterMap, nodeId: string): MapNode | undefined {
  return map.nodes.find((n) => n.nodeId === nodeId);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The map as stored in the metadata group and sent between nodes: JSON, readable by tools. */
export function encodeClusterMap(map: ClusterMap): Uint8Array {
  return encoder.encode(JSON.stringify(map));
}

export function decodeClusterMap(bytes: Uint8Array): ClusterMap {
  return checkClusterMap(JSON.parse(decoder.decode(bytes)));
}

/** A map from the wire or the store, checked for its shape before anything trusts it. */
export function checkClusterMap(value: unknown): ClusterMap {
  const map = value as ClusterMap | null;
  if (
    typeof map?.clusterId !== 'string' ||
    !Number.isInteger(map.epoch) ||
    !Array.isArray(map.nodes) ||
    !Array.isArray(map.shards) ||
    map.shards[0]?.shardId !== METADATA_SHARD
  ) {
    throw new PlacementError('malformed cluster map');
  }
  return map;
}
