import { describe, expect, it } from 'vitest';
import type { Outcome } from '../../src/cache/index.ts';
import { OutcomeUnknownError } from '../../src/shard/errors.ts';
import { type OutcomeWaiter, ProposalTracker } from '../../src/shard/proposals.ts';

function waiter(): OutcomeWaiter & { settled: Outcome | Error | undefined } {
  const w = {
    settled: undefined as Outcome | Error | undefined,
    resolve: (outcome: Outcome) => {
      w.settled = outcome;
    },
    reject: (error: Error) => {
      w.settled = error;
    },
  };
  return w;
}

const applied = (version: number): Outcome => ({ status: 'applied', version, count: 1 });

describe('ProposalTracker', () => {
  it('counts in-flight bytes and victims until the entry applies, then answers by position', () => {
    const tracker = new ProposalTracker(1);
    const [a, b] = [waiter(), waiter()];
    tracker.track(5, 2, [a, b], { outcomeIndex: [1, 2], bytesDelta: 300, evictedKeys: ['old'] });
    tracker.track(6, 2, [], { outcomeIndex: [], bytesDelta: -50, evictedKeys: [] });
    expect(tracker.inflightBytes).toBe(250);
    expect([...tracker.inflightVictims]).toEqual(['old']);
    const evicted: Outcome = { status: 'applied', version: 5, count: 1 };
    const missing: Outcome = { status: 'not-applied', reason: 'missing' };
    tracker.settle(5, 2, { index: 5, outcomes: [evicted, applied(5), missing] });
    expect([a.settled, b.settled]).toEqual([applied(5), missing]);
    expect(tracker.inflightBytes).toBe(-50);
    expect(tracker.inflightVictims.size).toBe(0);
  });

  it('reports unknown when another term wrote the index, or a snapshot jumped past it', () => {
    const tracker = new ProposalTracker(1);
    const [a, b, c] = [waiter(), waiter(), waiter()];
    tracker.track(7, 2, [a], { outcomeIndex: [0], bytesDelta: 1, evictedKeys: [] });
    tracker.track(8, 2, [b], { outcomeIndex: [0], bytesDelta: 1, evictedKeys: [] });
    tracker.track(9, 2, [c], { outcomeIndex: [0], bytesDelta: 1, evictedKeys: [] });
    tracker.settle(7, 3, undefined);
    expect(a.settled).toBeInstanceOf(OutcomeUnknownError);
    tracker.settleUpTo(8);
    expect(b.settled).toBeInstanceOf(OutcomeUnknownError);
    expect(c.settled).toBeUndefined();
    tracker.settle(9, 2, { index: 9, outcomes: [], refused: 'UNSUPPORTED_FORMAT' });
    expect(c.settled).toEqual({ status: 'refused', code: 'UNSUPPORTED_FORMAT' });
    expect(tracker.inflightBytes).toBe(0);
  });
});
