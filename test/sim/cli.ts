/**
 * The long simulation: `npm run sim -- --steps 1000000 --seed 7 [--nodes 3|5]`.
 * Prints progress, then steps/s, elections, commits and invariant checks; exits 1 on a
 * violation, printing the command that replays it.
 */
import { parseArgs } from 'node:util';
import { replayCommand, Simulation } from './simulation.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    nodes: { type: 'string', default: '5' },
  },
});
const steps = Number(values.steps);
const seed = Number(values.seed);
const nodes = Number(values.nodes);
if (
  !Number.isSafeInteger(steps) ||
  steps <= 0 ||
  !Number.isSafeInteger(seed) ||
  (nodes !== 3 && nodes !== 5)
) {
  console.error('usage: npm run sim -- [--steps N] [--seed S] [--nodes 3|5]');
  process.exit(2);
}

console.log(`simulating ${nodes} nodes, seed ${seed}, ${steps} steps`);
const started = performance.now();
const result = new Simulation({
  seed,
  nodes,
  steps,
  onProgress: (done) => {
    const rate = Math.round(done / ((performance.now() - started) / 1000));
    console.log(`  ${done} steps (${rate} steps/s)`);
  },
}).run();
const seconds = (performance.now() - started) / 1000;

console.log(
  [
    `steps        ${result.steps}`,
    `steps/s      ${Math.round(result.steps / seconds)}`,
    `ticks        ${result.ticks}`,
    `elections    ${result.elections}`,
    `commits      ${result.commits}`,
    `checks       ${result.checks}`,
    `crashes      ${result.crashes}`,
    `partitions   ${result.partitions}`,
    `calm phases  ${result.heals}`,
  ].join('\n'),
);
if (result.violation) {
  console.error(`VIOLATION at step ${result.violation.step}: ${result.violation.message}`);
  console.error(`replay: ${replayCommand(result)}`);
  process.exit(1);
}
console.log('no violation');
