import type { NodeId } from '../../src/raft/types.ts';

/**
 * Each node's monotonic clock in the simulation: real (simulated) time scaled by the node's
 * rate, so a clock can run slow or fast. A paused node (a long garbage-collection pause)
 * neither ticks nor reads messages, but its clock keeps running, as a real one would.
 */
export class SimClocks {
  /** Simulated real time in milliseconds. */
  realMs = 0;
  readonly #rate = new Map<NodeId, number>();
  readonly #pausedUntil = new Map<NodeId, number>();

  /** This node's clock reading now. */
  now(id: NodeId): number {
    return this.realMs * (this.#rate.get(id) ?? 1);
  }

  setRate(id: NodeId, rate: number): void {
    this.#rate.set(id, rate);
  }

  pause(id: NodeId, untilMs: number): void {
    this.#pausedUntil.set(id, untilMs);
  }

  isPaused(id: NodeId): boolean {
    return (this.#pausedUntil.get(id) ?? 0) > this.realMs;
  }

  /** Nodes whose pause ended at or before now and were not yet reported. */
  takeResumed(): NodeId[] {
    const resumed: NodeId[] = [];
    for (const [id, until] of this.#pausedUntil) {
      if (until <= this.realMs) {
        resumed.push(id);
        this.#pausedUntil.delete(id);
      }
    }
    return resumed;
  }

  resumeAll(): void {
    for (const id of this.#pausedUntil.keys()) this.#pausedUntil.set(id, this.realMs);
  }
}
