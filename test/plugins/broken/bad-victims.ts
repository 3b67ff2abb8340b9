// A third-party plugin whose victims walk goes wrong in one of the ways the store must
// survive: FIFO for its first `after` walks, then each walk is `kind`:
// - `absent`: names a handle no entry holds; `duplicate`: names one entry twice;
// - `keys`: names keys instead of handles; `fraction`: names 0.5;
// - `endless`: names its first victim over and over, far more than asked;
// - `not-iterable`: returns a number; `async`: returns an async generator;
// - `throws-midway`: names one victim, then throws.
import type { EntryTableView, EvictionPolicy } from '../../../src/cache/eviction-policy.ts';
import { FifoPolicy } from '../third-party/fifo-policy.ts';

export type BadVictims =
  | 'absent'
  | 'duplicate'
  | 'keys'
  | 'fraction'
  | 'endless'
  | 'not-iterable'
  | 'async'
  | 'throws-midway';

export interface BadVictimsOptions {
  readonly kind?: BadVictims;
  /** Walks that are right before the bad ones start. */
  readonly after?: number;
}

class BadVictimsPolicy extends FifoPolicy {
  readonly #kind: BadVictims;
  readonly #after: number;
  #walks = 0;
  #entries: EntryTableView | null = null;

  constructor(kind: BadVictims, after: number) {
    super();
    this.#kind = kind;
    this.#after = after;
  }

  override attach(view: EntryTableView): void {
    this.#entries = view;
    super.attach(view);
  }

  override victims(): Generator<number> {
    const fifo = super.victims();
    if (++this.#walks <= this.#after) return fifo;
    const view = this.#entries as EntryTableView;
    const wrong = (value: unknown) => value as Generator<number>;
    switch (this.#kind) {
      case 'absent':
        return wrong([view.handleLimit + 7, ...fifo][Symbol.iterator]());
      case 'duplicate': {
        const order = [...fifo];
        return wrong([order[0], ...order][Symbol.iterator]());
      }
      case 'keys':
        return wrong([...fifo].map((handle) => view.key(handle))[Symbol.iterator]());
      case 'fraction':
        return wrong([0.5][Symbol.iterator]());
      case 'endless':
        return wrong(endlessly([...fifo]));
      case 'not-iterable':
        return wrong(42);
      case 'async':
        return wrong(asynchronously([...fifo]));
      case 'throws-midway':
        return wrong(throwingAfterOne([...fifo]));
    }
  }
}

function* endlessly(handles: number[]): Generator<number> {
  for (;;) yield handles[0] as number;
}

async function* asynchronously(handles: number[]): AsyncGenerator<number> {
  yield* handles;
}

function* throwingAfterOne(handles: number[]): Generator<number> {
  if (handles.length > 0) yield handles[0] as number;
  throw new TypeError('victims lost its place');
}

export function createPolicy(options: BadVictimsOptions = {}): EvictionPolicy {
  return new BadVictimsPolicy(options.kind ?? 'absent', options.after ?? 0);
}
