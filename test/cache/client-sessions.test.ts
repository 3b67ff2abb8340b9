// The trimming of a client's window stops early for clients that send in order; this checks
// it against the plain rule (drop every seq at or below maxSeq - window, after each record)
// on in-order and out-of-order sequences alike.
import { describe, expect, it } from 'vitest';
import { ClientSessions } from '../../src/cache/client-sessions.ts';
import type { Outcome } from '../../src/cache/commands.ts';

const WINDOW = 8;

/** The rule, without shortcuts. */
class ReferenceWindow {
  maxSeq = 0;
  outcomes = new Map<number, Outcome>();
  record(seq: number, outcome: Outcome): void {
    this.outcomes.set(seq, outcome);
    if (seq > this.maxSeq) this.maxSeq = seq;
    if (this.outcomes.size > WINDOW)
      for (const old of this.outcomes.keys())
        if (old <= this.maxSeq - WINDOW) this.outcomes.delete(old);
  }
}

describe('client sessions window', () => {
  it.each([
    ['in order', 0],
    ['mostly in order', 0.1],
    ['shuffled', 0.6],
  ])('recalls exactly what the plain rule keeps (%s)', (_, disorder) => {
    let x = 99;
    const random = () => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x / 2 ** 32;
    };
    const sessions = new ClientSessions({ maxClients: 10, window: WINDOW, idleMs: 1e9 });
    const reference = new ReferenceWindow();
    let next = 1;
    for (let step = 0; step < 2000; step++) {
      // In order, with gaps (requests still in flight) that late ones may fill.
      let seq: number;
      if (random() < disorder) seq = Math.max(1, next - 1 - Math.floor(random() * 12));
      else {
        seq = next;
        next += random() < 0.3 ? 2 : 1;
      }
      if (sessions.recall('c', seq) !== undefined) continue;
      const outcome: Outcome = { status: 'applied', version: step + 1, count: 1 };
      sessions.record('c', seq, outcome);
      reference.record(seq, outcome);
      for (let probe = Math.max(1, next - 20); probe <= next; probe++) {
        const kept = reference.outcomes.get(probe);
        const recalled = sessions.recall('c', probe);
        if (kept !== undefined) expect(recalled).toBe(kept);
        else expect(recalled === undefined || recalled.status === 'unknown').toBe(true);
      }
    }
    // And the same after a snapshot round trip.
    const restored = new ClientSessions({ maxClients: 10, window: WINDOW, idleMs: 1e9 });
    const exported = sessions.export();
    expect(restored.import(exported.clock, exported.clients)).toBe(true);
    expect(restored.export()).toEqual(exported);
  });
});
