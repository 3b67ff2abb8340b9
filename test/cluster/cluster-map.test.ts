import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ClusterMap,
  decodeClusterMap,
  encodeClusterMap,
  foundingMap,
  type MapNode,
  METADATA_SHARD,
  slotTable,
  withJoinedNode,
} from '../../src/cluster/cluster-map.ts';
import { SLOT_COUNT } from '../../src/shard/key-slot.ts';

const node = (nodeId: string, region = 'r1'): MapNode => ({
  nodeId,
  address: `10.0.0.${nodeId.slice(1)}:7401`,
  region,
  capacityBytes: 1 << 30,
  process: `${nodeId}-first`,
  incarnation: 1,
});

const founded = (nodes: MapNode[], dataShards = 4, replicationFactor = 3): ClusterMap =>
  foundingMap({ clusterId: 'c', nodes, dataShards, replicationFactor });

describe('cluster map', () => {
  it('founds the metadata group as shard 0 and data shards 1..n that cover every slot once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 64 }),
        (count, shards) => {
          const nodes = Array.from({ length: count }, (_, i) => node(`n${i + 1}`));
          const map = founded(nodes, shards);
          expect(map.shards[0].shardId).toBe(METADATA_SHARD);
          expect(map.shards[0].slots).toEqual([]);
          expect(map.shards.slice(1).map((s) => s.shardId)).toEqual(
            Array.from({ length: shards }, (_, i) => i + 1),
          );
          const table = slotTable(map);
          expect(table).toHaveLength(SLOT_COUNT);
          expect(table.every((shardId) => shardId >= 1 && shardId <= shards)).toBe(true);
          for (const shard of map.shards) {
            const ids = shard.replicas.map((r) => r.replicaId);
            expect(new Set(ids).size).toBe(ids.length);
            expect(Math.max(...ids)).toBeLessThan(shard.nextReplicaId);
          }
        },
      ),
    );
  });

  it("places a shard's replicas in distinct regions when the founders' configurations give them", () => {
    const map = founded([node('n1', 'eu'), node('n2', 'eu'), node('n3', 'us'), node('n4', 'ap')]);
    const regionOf = new Map(map.nodes.map((n) => [n.nodeId, n.region]));
    for (const shard of map.shards.slice(1)) {
      const regions = shard.replicas.map((r) => regionOf.get(r.node));
      expect(new Set(regions).size).toBe(3);
    }
  });

  it('adds a new node without replicas, and gives a node that lost its state new incarnations', () => {
    const map = founded([node('n1'), node('n2'), node('n3')]);
    const grown = withJoinedNode(map, node('n4'));
    expect(grown.epoch).toBe(map.epoch + 1);
    expect(grown.nodes.map((n) => n.nodeId)).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(grown.shards).toEqual(map.shards);

    // The same process asking again changes nothing; a new process of a known node is a restart.
    expect(withJoinedNode(grown, node('n4'))).toBe(grown);
    const back = withJoinedNode(grown, {
      ...node('n2'),
      address: '10.0.0.9:7401',
      process: 'n2-restarted',
    });
    expect(back.nodes.find((n) => n.nodeId === 'n2')).toMatchObject({
      address: '10.0.0.9:7401',
      incarnation: 2,
    });
    for (const [i, shard] of back.shards.entries()) {
      const before = grown.shards[i];
      const old = before.replicas.find((r) => r.node === 'n2');
      const now = shard.replicas.find((r) => r.node === 'n2');
      if (old === undefined) {
        expect(shard).toEqual(before);
        continue;
      }
      // A fresh id, never used in the shard, and the others untouched.
      expect(now?.replicaId).toBe(before.nextReplicaId);
      expect(shard.nextReplicaId).toBe(before.nextReplicaId + 1);
      expect(shard.replicas.filter((r) => r.node !== 'n2')).toEqual(
        before.replicas.filter((r) => r.node !== 'n2'),
      );
    }
  });

  it('round-trips through its encoding and refuses a malformed one', () => {
    const map = founded([node('n1'), node('n2'), node('n3')]);
    expect(decodeClusterMap(encodeClusterMap(map))).toEqual(map);
    expect(() => decodeClusterMap(new TextEncoder().encode('{"clusterId":1}'))).toThrow(
      /malformed cluster map/,
    );
  });
});
