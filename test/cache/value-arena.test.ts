import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValueArena } from '../../src/cache/value-arena.ts';

const PAGE = 64;

describe('value arena', () => {
  it('keeps every stored value intact through replacements, releases and reclaiming', () => {
    const op = fc.record({
      slot: fc.nat({ max: 11 }),
      length: fc.oneof(fc.constant(0), fc.nat({ max: 16 }), fc.nat({ max: 40 })),
      fill: fc.nat({ max: 255 }),
      release: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const arena = new ValueArena(PAGE);
        arena.grow(12);
        const model = new Map<number, Uint8Array>();
        const views: [Uint8Array, Uint8Array][] = [];
        for (const { slot, length, fill, release } of ops) {
          if (model.has(slot)) {
            views.push([arena.view(slot), (model.get(slot) as Uint8Array).slice()]);
            arena.release(slot);
            model.delete(slot);
          }
          if (!release) {
            const value = new Uint8Array(length).fill(fill);
            arena.store(slot, value);
            model.set(slot, value);
          }
          let live = 0;
          for (const [s, value] of model) {
            expect(arena.view(s)).toEqual(value);
            live += value.byteLength;
          }
          // Views handed out earlier never change.
          for (const [view, copy] of views) expect(view).toEqual(copy);
          expect(arena.heldBytes).toBeLessThanOrEqual(2 * live + PAGE + 12 * 40);
        }
      }),
      { numRuns: 300 },
    );
  });
});
