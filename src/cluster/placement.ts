import { SLOT_COUNT, type SlotRange, slotsOf } from '../shard/key-slot.ts';

/** What placement needs to know of a node. */
export interface PlacementNode {
  readonly nodeId: string;
  /** Replicas of one shard go to distinct regions where there are enough of them. */
  readonly region: string;
}

export interface ShardPlan {
  readonly shardId: number;
  readonly slots: readonly SlotRange[];
  /** Node ids of the shard's replicas, as many as the replication factor. */
  readonly replicas: readonly string[];
}

export class PlacementError extends Error {
  override name = 'PlacementError';
  readonly code = 'BAD_PLACEMENT';
}

/**
 * A new cluster's placement: each shard's replicas on distinct nodes, in distinct regions as
 * far as the regions allow, then on the nodes holding the fewest replicas so far.
 * Deterministic: the same nodes and counts give the same plan.
 */
export function planShards(
  nodes: readonly PlacementNode[],
  shardCount: number,
  replicationFactor: number,
): ShardPlan[] {
  if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > SLOT_COUNT) {
    throw new PlacementError(
      `shard count must be an integer from 1 to ${SLOT_COUNT}, not ${shardCount}`,
    );
  }
  if (!Number.isInteger(replicationFactor) || replicationFactor < 1) {
    throw new PlacementError(
      `replication factor must be a positive integer, not ${replicationFactor}`,
    );
  }
  const ids = new Set(nodes.map((n) => n.nodeId));
  if (ids.size !== nodes.length) throw new PlacementError('node ids must be distinct');
  if (replicationFactor > nodes.length) {
    throw new PlacementError(
      `replication factor ${replicationFactor} needs at least as many nodes; there are ${nodes.length}`,
    );
  }
  const sorted = [...nodes].sort((a, b) =>
    a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0,
  );
  const load = new Map(sorted.map((n) => [n.nodeId, 0]));
  const plans: ShardPlan[] = [];
  for (let shardId = 0; shardId < shardCount; shardId++) {
    const chosen: PlacementNode[] = [];
    for (let r = 0; r < replicationFactor; r++) {
      const regions = new Set(chosen.map((n) => n.region));
      // A region not yet used by this shard first (surviving a region's loss comes before
      // balance), then the least loaded; the rotation by shard id spreads ties around.
      let best: PlacementNode | undefined;
      let bestKey: [number, number, number] | undefined;
      sorted.forEach((node, position) => {
        if (chosen.includes(node)) return;
        const key: [number, number, number] = [
          regions.has(node.region) ? 1 : 0,
          load.get(node.nodeId) as number,
          (position - shardId + sorted.length * shardCount) % sorted.length,
        ];
        if (!bestKey || compareKeys(key, bestKey) < 0) {
          best = node;
          bestKey = key;
        }
      });
      const pick = best as PlacementNode;
      chosen.push(pick);
      load.set(pick.nodeId, (load.get(pick.nodeId) as number) + 1);
    }
    plans.push({
      shardId,
      slots: [slotsOf(shardId, shardCount)],
      replicas: chosen.map((n) => n.nodeId),
    });
  }
  return plans;
}

function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}
