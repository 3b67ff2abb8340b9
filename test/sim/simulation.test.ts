import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PLANTED_BUGS, withoutBug } from './planted-bugs.ts';
import {
  replayCommand,
  Simulation,
  type SimulationOptions,
  type SimulationResult,
} from './simulation.ts';

function describeFailure(result: SimulationResult, plant?: string): string {
  return `violation at step ${result.violation?.step} (seed ${result.seed}, ${result.nodes} nodes): ${result.violation?.message}\nreplay: ${replayCommand(result, plant)}`;
}

/** Runs seeds 1, 2, ... on 3 and 5 nodes until one breaks an invariant, within `budget` steps. */
function firstViolation(
  options: Partial<SimulationOptions>,
  budget: number,
): { caught?: SimulationResult; spent: number } {
  let spent = 0;
  for (let seed = 1; spent < budget; seed++) {
    for (const nodes of [3, 5] as const) {
      const result = new Simulation({ seed, nodes, steps: 100_000, ...options }).run();
      spent += result.steps;
      if (result.violation) return { caught: result, spent };
    }
  }
  return { spent };
}

describe('seeded cluster simulation', () => {
  const runs: SimulationResult[] = [];
  // 240,000 steps in all: chaos, calm and rejoin phases over 3- and 5-node groups.
  for (const [nodes, seed] of [
    [3, 101],
    [3, 102],
    [5, 201],
    [5, 202],
  ] as const) {
    it(`${nodes} nodes, seed ${seed}: safety after every step, reads against the history, liveness after every heal`, () => {
      const result = new Simulation({ seed, nodes, steps: 60_000 }).run();
      if (result.violation) expect.fail(describeFailure(result));
      runs.push(result);
      expect(result.steps).toBeGreaterThanOrEqual(60_000);
      // The run must have exercised what it claims to check.
      expect(result.elections).toBeGreaterThan(5);
      expect(result.crashes).toBeGreaterThan(0);
      expect(result.partitions).toBeGreaterThan(0);
      expect(result.writesAcked).toBeGreaterThan(100);
      expect(result.readsServed).toBeGreaterThan(100);
    });
  }

  it('the runs above paused nodes, transferred leadership, brought cut-off followers back, compacted, sent snapshots and changed membership', () => {
    const total = (
      key:
        | 'pauses'
        | 'transfers'
        | 'rejoins'
        | 'snapshotsTaken'
        | 'snapshotsSent'
        | 'amnesias'
        | 'replacements'
        | 'changes',
    ) => runs.reduce((sum, run) => sum + run[key], 0);
    expect(runs).toHaveLength(4);
    expect(total('pauses')).toBeGreaterThan(10);
    expect(total('transfers')).toBeGreaterThan(5);
    expect(total('rejoins')).toBeGreaterThan(3);
    expect(total('snapshotsTaken')).toBeGreaterThan(100);
    expect(total('snapshotsSent')).toBeGreaterThan(10);
    expect(total('amnesias')).toBeGreaterThan(2);
    expect(total('replacements')).toBeGreaterThan(2);
    expect(total('changes')).toBeGreaterThan(2);
  });

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

  it('clocks running slower than the drift margin allows break leases, and the checker sees it', () => {
    const { caught, spent } = firstViolation({ clockDrift: 'beyond' }, 2_000_000);
    if (!caught) expect.fail(`no broken lease within ${spent} steps`);
    console.log(`beyond the drift margin: caught after ${spent} steps: ${describeFailure(caught)}`);
    expect(['broken-lease', 'stale-read']).toContain(caught.violation?.kind);
  });
});

describe('planted bugs: the simulator catches each within its budget, by what it breaks', () => {
  for (const [name, bug] of Object.entries(PLANTED_BUGS)) {
    it(name, () => {
      const { caught, spent } = firstViolation({ factory: bug.factory, ...bug.options }, 4_000_000);
      if (!caught?.violation) expect.fail(`not caught within ${spent} steps`);
      console.log(`${name}: caught after ${spent} steps in all: ${describeFailure(caught, name)}`);
      expect(bug.breaks, describeFailure(caught, name)).toContain(caught.violation.kind);
      if (caught.violation.kind === 'core-invariant') {
        expect(bug.coreInvariant, 'the core check this bug trips').toBeInstanceOf(RegExp);
        expect(caught.violation.message).toMatch(bug.coreInvariant as RegExp);
      }
      // The bug, not the run, broke it: the same seed and steps with a correct node pass.
      const control = new Simulation({
        seed: caught.seed,
        nodes: caught.nodes === 3 ? 3 : 5,
        steps: caught.budget,
        ...withoutBug(bug),
      }).run();
      if (control.violation) expect.fail(`without the bug: ${describeFailure(control)}`);
    });
  }
});
