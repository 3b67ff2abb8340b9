/**
 * The long simulation: `npm run sim -- --steps 1000000 --seed 7 [--nodes 3|5]`.
 * Prints progress, then steps/s, elections, commits and invariant checks; exits 1 on a
 * violation, printing the command that replays it. `--plant BUG` replays a planted-bug run
 * of the tests.
 */
import { parseArgs } from 'node:util';
import { PLANTED_BUGS } from './planted-bugs.ts';
import { replayCommand, Simulation } from './simulation.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    nodes: { type: 'string', default: '5' },
    plant: { type: 'string' },
  },
});
const steps = Number(values.steps);
const seed = Number(values.seed);
const nodes = Number(values.nodes);
const planted = values.plant === undefined ? undefined : PLANTED_BUGS[values.plant];
if (
  !Number.isSafeInteger(steps) ||
  steps <= 0 ||
  !Number.isSafeInteger(seed) ||
  (nodes !== 3 && nodes !== 5) ||
  (values.plant !== undefined && !planted)
) {
  console.error('usage: npm run sim -- [--steps N] [--seed S] [--nodes 3|5] [--plant BUG]');
  console.error(`planted bugs (for tests): ${Object.keys(PLANTED_BUGS).join('; ')}`);
  process.exit(2);
}

console.log(
  `simulating ${nodes} nodes, seed ${seed}, ${steps} steps${values.plant ? `, planted bug: ${values.plant}` : ''}`,
);
const started = performance.now();
const result = new Simulation({
  seed,
  nodes,
  steps,
  factory: planted?.factory,
  ...planted?.options,
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
    `committed    ${result.committed} entries (${result.writesAcked} writes acknowledged)`,
    `reads        ${result.readsServed} served, ${result.readsFailed} failed (retried by clients)`,
    `checks       ${result.checks}`,
    `crashes      ${result.crashes}`,
    `pauses       ${result.pauses}`,
    `snapshots    ${result.snapshotsTaken} taken, ${result.snapshotsSent} sent`,
    `membership   ${result.amnesias} replicas lost their state, ${result.moves} moved, ${result.replacements} replacements done, ${result.changes} other changes asked, ${result.splitChanges} split changes staged`,
    `transfers    ${result.transfers}`,
    `rejoins      ${result.rejoins}`,
    `partitions   ${result.partitions}`,
    `calm phases  ${result.heals}`,
  ].join('\n'),
);
if (result.violation) {
  console.error(`VIOLATION at step ${result.violation.step}: ${result.violation.message}`);
  console.error(`replay: ${replayCommand(result, values.plant)}`);
  process.exit(1);
}
console.log('no violation');
