import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PLANTED_BUGS } from './planted-bugs.ts';
import { replayCommand, Simulation, type SimulationResult } from './simulation.ts';

function describeFailure(result: SimulationResult, plant?: string): string {
  return `violation at step ${result.violation?.step} (seed ${result.seed}, ${result.nodes} nodes): ${result.violation?.message}\nreplay: ${replayCommand(result, plant)}`;
}

describe('seeded cluster simulation', () => {
  // 240,000 steps in all: chaos and calm phases over 3- and 5-node groups.
  for (const [nodes, seed] of [
    [3, 101],
    [3, 102],
    [5, 201],
    [5, 202],
  ] as const) {
    it(`${nodes} nodes, seed ${seed}: safety after every step, liveness after every heal`, () => {
      const result = new Simulation({ seed, nodes, steps: 60_000 }).run();
      if (result.violation) expect.fail(describeFailure(result));
      expect(result.steps).toBeGreaterThanOrEqual(60_000);
      // The run must have exercised what it claims to check.
      expect(result.elections).toBeGreaterThan(5);
      expect(result.crashes).toBeGreaterThan(0);
      expect(result.partitions).toBeGreaterThan(0);
      expect(result.committed).toBeGreaterThan(100);
    });
  }

  it('property: any seed, 3 or 5 nodes, short runs keep every invariant', () => {
    // fast-check prints the seed and path that replay a failure; the message names the
    // simulation seed for `npm run sim`.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.constantFrom(3 as const, 5 as const),
        (seed, nodes) => {
          const result = new Simulation({ seed, nodes, steps: 4_000 }).run();
          if (result.violation) throw new Error(describeFailure(result));
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe('planted bugs: the simulator catches each within its budget', () => {
  const STEPS_PER_RUN = 100_000;
  const BUDGET = 2_000_000;
  for (const [bug, factory] of Object.entries(PLANTED_BUGS)) {
    it(bug, () => {
      let spent = 0;
      let caught: SimulationResult | undefined;
      for (let seed = 1; spent < BUDGET && !caught; seed++) {
        for (const nodes of [3, 5] as const) {
          const result = new Simulation({ seed, nodes, steps: STEPS_PER_RUN, factory }).run();
          spent += result.steps;
          if (result.violation) {
            caught = result;
            break;
          }
        }
      }
      if (!caught) expect.fail(`not caught within ${BUDGET} steps`);
      console.log(`${bug}: caught after ${spent} steps in all: ${describeFailure(caught, bug)}`);
      expect(caught.violation?.message).toMatch(/Violation|RaftInvariantError/);
    });
  }
});
