import { SeededRandom } from '../../src/raft/random.ts';
import type { NodeId } from '../../src/raft/types.ts';
import { type NodeFactory, ReplicaHost } from '../support/replica-host.ts';
import { InvariantChecker, SafetyViolation } from './invariants.ts';
import { RELIABLE, SimNetwork } from './network.ts';

export interface SimulationOptions {
  readonly seed: number;
  readonly nodes: 3 | 5;
  readonly steps: number;
  /** Builds each node: a test passes a subclass to plant a bug. */
  readonly factory?: NodeFactory;
  /** Called every `PROGRESS_EVERY` steps, for long runs. */
  readonly onProgress?: (steps: number) => void;
}

const PROGRESS_EVERY = 100_000;

export interface SimulationResult {
  readonly seed: number;
  readonly nodes: number;
  readonly steps: number;
  readonly ticks: number;
  readonly elections: number;
  /** Highest index committed (entries committed in all, no-ops included). */
  readonly committed: number;
  /** Client entries applied, summed over nodes (replays after restarts included). */
  readonly applied: number;
  readonly checks: number;
  readonly crashes: number;
  readonly partitions: number;
  readonly heals: number;
  /** The first property found broken, with the step it broke at; undefined on a clean run. */
  readonly violation?: { readonly step: number; readonly message: string };
}

const ELECTION_TICKS = 10;
/** After the network heals, a leader must be elected and commit a new proposal within this. */
const LIVENESS_TICKS = 20 * ELECTION_TICKS;
const PROPOSAL_BYTES = 4;

/**
 * A seeded run of a whole Raft group through chaos. It alternates two phases:
 * - chaos: messages dropped, duplicated, delayed and reordered; symmetric and one-way
 *   partitions; nodes crashing (losing all they had not persisted) and restarting;
 * - calm: every node up, the network reliable; within `LIVENESS_TICKS` a leader must commit a
 *   proposal made after the calm began.
 * Clients propose throughout, on any node. A step is one node tick, one message delivered, or
 * one proposal; the invariant checker runs on every `Ready`, so after every step. The same
 * seed replays the same run exactly.
 */
export class Simulation {
  readonly #options: SimulationOptions;
  readonly #random: SeededRandom;
  readonly #network: SimNetwork;
  readonly #checker = new InvariantChecker(() => this.#hosts.map((host) => host.node));
  readonly #hosts: ReplicaHost[] = [];
  readonly #ids: NodeId[];
  readonly #down = new Set<NodeId>();
  #step = 0;
  #now = 0;
  #nextProposal = 1;
  /** A partition due at a given step (cutting a new leader off part way through its work). */
  #pendingPartition: { side: NodeId[]; atStep: number } | undefined;
  /** Chance of a fault per tick in this chaos phase: some phases are turbulent. */
  #faultRate = 0;
  #stats = { elections: 0, applied: 0, crashes: 0, partitions: 0, heals: 0 };
  /** During calm: the first proposal id that proves progress, and the tick it is due by. */
  #calm: { firstProposal: number; deadline: number; satisfied: boolean } | undefined;

  constructor(options: SimulationOptions) {
    this.#options = options;
    this.#random = new SeededRandom(options.seed);
    this.#network = new SimNetwork(new SeededRandom(options.seed ^ 0x5bd1e995));
    this.#ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
    // Some runs send one entry per append, so that a leader's entries of different terms
    // reach followers in separate messages (the Figure 8 interleavings need that).
    const maxBytesPerAppend = this.#random.pick([
      16 + PROPOSAL_BYTES,
      16 + PROPOSAL_BYTES,
      64,
      1 << 20,
    ]);
    for (const id of this.#ids) {
      this.#hosts.push(
        new ReplicaHost(id, {
          voters: this.#ids,
          electionTicks: ELECTION_TICKS,
          heartbeatTicks: 1,
          maxBytesPerAppend,
          seed: options.seed,
          factory: options.factory,
        }),
      );
    }
  }

  run(): SimulationResult {
    try {
      while (this.#step < this.#options.steps) this.#runPhase();
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      return this.#result({ step: this.#step, message: `${error.name}: ${error.message}` });
    }
    return this.#result(undefined);
  }

  #runPhase(): void {
    const calm = this.#random.chance(0.35);
    const length = calm ? LIVENESS_TICKS + 10 : 50 + this.#random.int(300);
    if (calm) this.#beginCalm();
    else this.#beginChaos();
    for (let t = 0; t < length && this.#step < this.#options.steps; t++) {
      this.#tick();
      if (!calm) this.#maybeInjectFault();
      this.#checkLiveness();
    }
    this.#calm = undefined;
    this.#pendingPartition = undefined;
  }

  #beginCalm(): void {
    this.#network.heal();
    this.#network.faults = RELIABLE;
    for (const id of [...this.#down]) this.#restart(id);
    this.#stats.heals++;
    this.#calm = {
      firstProposal: this.#nextProposal,
      deadline: this.#now + LIVENESS_TICKS,
      satisfied: false,
    };
  }

  #beginChaos(): void {
    const r = this.#random;
    this.#network.faults = {
      drop: r.pick([0, 0.02, 0.1, 0.3]),
      duplicate: r.pick([0, 0.02, 0.1]),
      delay: r.pick([0, 0.1, 0.3]),
      maxDelay: 1 + r.int(2 * ELECTION_TICKS),
    };
    this.#faultRate = r.pick([0.02, 0.05, 0.2]);
  }

  #maybeInjectFault(): void {
    const r = this.#random;
    if (!r.chance(this.#faultRate)) return;
    const live = this.#ids.filter((id) => !this.#down.has(id));
    const leader = this.#hosts.find((h) => !this.#down.has(h.id) && h.node.role === 'leader')?.id;
    switch (r.int(7)) {
      case 0:
        if (live.length > 0) this.#crash(r.pick(live));
        return;
      case 1:
        // Leaders are where the interesting interleavings start.
        if (leader !== undefined) this.#crash(leader);
        return;
      case 2:
        if (this.#down.size > 0) this.#restart(r.pick([...this.#down]));
        return;
      case 3: {
        const side = this.#ids.filter(() => r.chance(0.5));
        this.#network.partition(side, this.#ids);
        this.#stats.partitions++;
        return;
      }
      case 4:
        if (leader !== undefined) {
          this.#network.partition([leader], this.#ids);
          this.#stats.partitions++;
        }
        return;
      case 5:
        this.#network.cutOneWay(r.pick(this.#ids), r.pick(this.#ids));
        this.#stats.partitions++;
        return;
      default:
        this.#network.heal();
    }
  }

  #tick(): void {
    this.#now++;
    for (const host of this.#hosts) {
      if (this.#down.has(host.id)) continue;
      host.node.tick();
      this.#afterStep(host);
    }
    if (this.#random.chance(0.5)) this.#propose();
    let delivered = 0;
    for (let m = this.#network.takeDue(this.#now); m; m = this.#network.takeDue(this.#now)) {
      if (this.#down.has(m.to) || !this.#network.connected(m.from, m.to)) continue;
      const host = this.#hosts[m.to - 1];
      host.node.step(m);
      this.#afterStep(host);
      if (++delivered > 100_000)
        throw new SafetyViolation('message storm: no quiet within one tick');
    }
  }

  #propose(): void {
    const live = this.#ids.filter((id) => !this.#down.has(id));
    if (live.length === 0) return;
    const host = this.#hosts[this.#random.pick(live) - 1];
    const count = 1 + this.#random.int(3);
    const data: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const bytes = new Uint8Array(PROPOSAL_BYTES);
      new DataView(bytes.buffer).setUint32(0, this.#nextProposal++);
      data.push(bytes);
    }
    host.node.propose(data);
    this.#afterStep(host);
  }

  /** One step done: run the node's `Ready` through the checker and onto the network. */
  #afterStep(host: ReplicaHost): void {
    if (this.#pendingPartition && this.#step >= this.#pendingPartition.atStep) {
      this.#network.partition(this.#pendingPartition.side, this.#ids);
      this.#pendingPartition = undefined;
      this.#stats.partitions++;
    }
    if (++this.#step % PROGRESS_EVERY === 0) this.#options.onProgress?.(this.#step);
    const messages = host.processReady(({ id, ready }) => {
      this.#checker.onReady(id, host.node, ready);
      if (ready.softState?.role === 'leader') this.#onElected(id);
      for (const entry of ready.committedEntries) {
        if (entry.data.length !== PROPOSAL_BYTES) continue;
        this.#stats.applied++;
        const proposal = new DataView(entry.data.buffer, entry.data.byteOffset).getUint32(0);
        if (this.#calm && proposal >= this.#calm.firstProposal) this.#calm.satisfied = true;
      }
    });
    for (const m of messages) this.#network.send(m, this.#now);
  }

  /**
   * A new leader is often cut off at once, from some or all of its followers (in chaos):
   * entries then sit on a minority under one term while another term's leader writes the same
   * indexes, which is where commit and election rules get tested hardest.
   */
  #onElected(id: NodeId): void {
    this.#stats.elections++;
    if (this.#calm || !this.#random.chance(0.5)) return;
    const side = this.#ids.filter((other) => other === id || this.#random.chance(0.3));
    this.#pendingPartition = { side, atStep: this.#step + this.#random.int(12) };
  }

  #checkLiveness(): void {
    const calm = this.#calm;
    if (!calm || calm.satisfied || this.#now < calm.deadline) return;
    const leaders = this.#hosts
      .filter((h) => h.node.role === 'leader')
      .map((h) => `${h.id}@${h.node.term}`);
    throw new SafetyViolation(
      `liveness: no proposal committed within ${LIVENESS_TICKS} ticks of the network healing (leaders: ${leaders.join(', ') || 'none'})`,
    );
  }

  #crash(id: NodeId): void {
    this.#down.add(id);
    this.#stats.crashes++;
  }

  #restart(id: NodeId): void {
    this.#down.delete(id);
    this.#hosts[id - 1].restart();
    this.#checker.onRestart(id);
  }

  #result(violation: SimulationResult['violation']): SimulationResult {
    return {
      seed: this.#options.seed,
      nodes: this.#options.nodes,
      steps: this.#step,
      ticks: this.#now,
      ...this.#stats,
      committed: this.#checker.committedIndex,
      checks: this.#checker.checks,
      violation,
    };
  }
}

/** The command that replays a run (`plant` names the planted bug it ran with, if any). */
export function replayCommand(result: SimulationResult, plant?: string): string {
  const planted = plant ? ` --plant '${plant}'` : '';
  return `npm run sim -- --seed ${result.seed} --nodes ${result.nodes} --steps ${result.steps}${planted}`;
}
