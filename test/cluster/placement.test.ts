import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PlacementError, planShards } from '../../src/cluster/placement.ts';
import { SLOT_COUNT, slotsOf } from '../../src/shard/key-slot.ts';

const nodesOf = (regions: string[]) =>
  regions.map((region, i) => ({ nodeId: `n${i + 1}`, region }));

describe('placement of a new cluster', () => {
  it('property: shards cover every slot once, in ranges one slot apart in size at most', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 512 }), (shards) => {
        let next = 0;
        const sizes: number[] = [];
        for (let s = 0; s < shards; s++) {
          const { first, last } = slotsOf(s, shards);
          expect(first).toBe(next);
          sizes.push(last - first + 1);
          next = last + 1;
        }
        expect(next).toBe(SLOT_COUNT);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('property: replicas on distinct nodes, in distinct regions when there are enough, loads balanced in one region', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('eu', 'us', 'ap'), { minLength: 1, maxLength: 9 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 5 }),
        (regions, shards, factor) => {
          fc.pre(factor <= regions.length);
          const nodes = nodesOf(regions);
          const plan = planShards(nodes, shards, factor);
          const regionOf = new Map(nodes.map((n) => [n.nodeId, n.region]));
          const distinctRegions = new Set(regions).size;
          for (const shard of plan) {
            expect(new Set(shard.replicas).size).toBe(factor);
            const used = new Set(shard.replicas.map((id) => regionOf.get(id)));
            expect(used.size).toBe(Math.min(factor, distinctRegions));
          }
          if (distinctRegions === 1) {
            const load = nodes.map((n) => plan.filter((s) => s.replicas.includes(n.nodeId)).length);
            expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(1);
          }
        },
      ),
    );
  });

  it('the same nodes and counts give the same plan', () => {
    const nodes = nodesOf(['eu', 'us', 'eu', 'us']);
    expect(planShards(nodes, 8, 3)).toEqual(planShards([...nodes].reverse(), 8, 3));
  });

  it('refuses what cannot be placed, saying why', () => {
    const nodes = nodesOf(['eu', 'eu']);
    expect(() => planShards(nodes, 4, 3)).toThrow(PlacementError);
    expect(() => planShards(nodes, 4, 3)).toThrow(/at least as many nodes/);
    expect(() => planShards(nodes, 0, 1)).toThrow(/shard count/);
    expect(() => planShards([...nodes, nodes[0]], 1, 1)).toThrow(/distinct/);
  });
});
