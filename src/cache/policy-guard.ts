// The store's shield against its eviction plugin. A plugin is untrusted code that every
// replica runs inside `apply`: a hook that threw there would leave the entry half applied,
// and throw again on every replica applying the same entry, taking the shard down on all
// nodes. So the store calls its plugin only through this guard, which
// - is told of each change after the store has made it, and catches whatever a hook throws
//   (or returns: a promise is work outside the apply, and its rejection is swallowed), so a
//   failing plugin can lose only its own, replica-local order;
// - checks every victim a walk names (a live entry's handle, named once in the walk) before
//   the leader's `prepare` sees it, and ends a walk of the plugin's that runs past its time
//   budget (measured by the clock it is given; a call that never returns cannot be cut short);
// - on the first failure, or after `slowWalksToFallback` slow walks in a row, drops the
//   plugin for good and puts the fallback in its place, attached to the same view, so it
//   learns the order from the entries' metadata (a walk under way goes on with it). Without
//   a fallback, or when it fails too, nothing is evicted and writes that need room are
//   refused as full: the shard keeps serving.
// Failures are counted per hook and reported by `health()` (STATS). Only the leader's walks
// decide anything replicated, and only through the log; replicas stay equal whatever their
// plugins do.
import type { EntryTableView, EvictionPolicy } from './eviction-policy.ts';

export const POLICY_HOOKS = [
  'createPolicy',
  'attach',
  'onInsert',
  'onUpdate',
  'onAccess',
  'onRemove',
  'victims',
  'rebuild',
] as const;

export type PolicyHook = (typeof POLICY_HOOKS)[number];

type NotifyHook = 'onInsert' | 'onUpdate' | 'onAccess' | 'onRemove';

/** How the store's eviction is doing: what STATS reports. */
export interface PolicyHealth {
  /** The plugin configured: its name as the config gave it. */
  readonly configured: string;
  /** The policy choosing victims now: the plugin's name, the fallback's, or `none`. */
  readonly active: string;
  /** Why the plugin was dropped (the hook and what went wrong); empty while it serves. */
  readonly fallbackReason: string;
  /** Failures by hook: exceptions, promises returned, invalid victims, walks over budget. */
  readonly failures: Readonly<Record<PolicyHook, number>>;
  /** Victims walks of the plugin that ran past the time budget (each ended there). */
  readonly slowWalks: number;
}

/** Told once, when a policy is dropped. */
export interface PolicyFallbackEvent {
  readonly plugin: string;
  /** The policy dropped and the one in its place (`none`: nothing is evicted now). */
  readonly dropped: string;
  readonly active: string;
  readonly hook: PolicyHook;
  readonly reason: string;
}

export interface PolicyGuardOptions {
  /** Makes the plugin's policy; absent: the store evicts nothing. */
  readonly create?: (() => EvictionPolicy) | undefined;
  /** How the config named the plugin, for STATS and logs; by default the policy's name. */
  readonly plugin?: string | undefined;
  /** Makes the built-in policy that takes over from a failed plugin. */
  readonly fallback?: (() => EvictionPolicy) | undefined;
  /** Monotonic ms for the victims budget; without one, walks are not timed. */
  readonly clock?: (() => number) | undefined;
  /** The most a victims walk of the plugin may take (default 20 ms). */
  readonly victimsBudgetMs?: number | undefined;
  /** Slow walks in a row that drop the plugin (default 3). */
  readonly slowWalksToFallback?: number | undefined;
  readonly onFallback?: ((event: PolicyFallbackEvent) => void) | undefined;
}

export const DEFAULT_VICTIMS_BUDGET_MS = 20;
export const DEFAULT_SLOW_WALKS_TO_FALLBACK = 3;

const RETURNED_PROMISE = 'returned a promise; hooks are synchronous';

/** Longest failure reason kept: a plugin's message is not ours to store whole. */
const MAX_REASON = 200;

export class GuardedPolicy implements EvictionPolicy {
  readonly #options: PolicyGuardOptions;
  #view: EntryTableView | null = null;
  /** The plugin while it serves; null once dropped. */
  #plugin: EvictionPolicy | null = null;
  /** Whoever is notified and walked: the plugin, the fallback, or nobody. */
  #active: EvictionPolicy | null = null;
  #activeName = 'none';
  #serving: 'plugin' | 'fallback' | 'none' = 'none';
  #configured: string;
  #fallbackReason = '';
  readonly #failures: Record<PolicyHook, number> = Object.fromEntries(
    POLICY_HOOKS.map((hook) => [hook, 0]),
  ) as Record<PolicyHook, number>;
  #slowWalks = 0;
  #slowInARow = 0;
  /** Per handle: the last walk that named it, so a walk names each handle once. */
  #namedIn = new Uint32Array(0);
  #walks = 0;

  constructor(options: PolicyGuardOptions) {
    this.#options = options;
    this.#configured = options.plugin ?? 'none';
  }

  get name(): string {
    return this.#activeName;
  }

  health(): PolicyHealth {
    return {
      configured: this.#configured,
      active: this.#activeName,
      fallbackReason: this.#fallbackReason,
      failures: { ...this.#failures },
      slowWalks: this.#slowWalks,
    };
  }

  /** Makes the plugin's policy and attaches it; a failure of either hands over to the fallback. */
  attach(view: EntryTableView): void {
    this.#view = view;
    const create = this.#options.create;
    if (create === undefined) return;
    let hook: PolicyHook = 'createPolicy';
    this.#serving = 'plugin';
    try {
      const policy = create();
      const name = policy.name;
      if (typeof name !== 'string' || name === '') throw new Error('made a policy without a name');
      if (this.#options.plugin === undefined) this.#configured = name;
      this.#plugin = this.#active = policy;
      this.#activeName = name;
      hook = 'attach';
      if (swallow(policy.attach(view))) throw new Error(RETURNED_PROMISE);
    } catch (error) {
      this.#fail(hook, error);
    }
  }

  onInsert(handle: number): void {
    this.#notify('onInsert', handle);
  }

  onUpdate(handle: number): void {
    this.#notify('onUpdate', handle);
  }

  onAccess(handle: number): void {
    this.#notify('onAccess', handle);
  }

  onRemove(handle: number): void {
    this.#notify('onRemove', handle);
  }

  rebuild(): void {
    const policy = this.#active;
    if (policy === null) return;
    try {
      this.#returned('rebuild', policy.rebuild());
    } catch (error) {
      this.#fail('rebuild', error);
    }
  }

  /**
   * The active policy's victims, each a live handle named once. When the plugin fails
   * mid-walk, the fallback goes on from there, skipping the handles already named.
   */
  *victims(bytesNeeded: number): Generator<number> {
    const view = this.#view;
    if (view === null) return;
    const walk = this.#startWalk(view.handleLimit);
    let resumed = false;
    for (let policy = this.#active; policy !== null; policy = this.#active) {
      const ended = yield* this.#walk(policy, view, walk, bytesNeeded, resumed);
      if (ended) return;
      resumed = true;
    }
  }

  /** One policy's walk; true if it ended (done, or over budget), false if the policy failed. */
  *#walk(
    policy: EvictionPolicy,
    view: EntryTableView,
    walk: number,
    bytesNeeded: number,
    resumed: boolean,
  ): Generator<number, boolean> {
    const clock = policy === this.#plugin ? this.#options.clock : undefined;
    const started = clock?.() ?? 0;
    const budget = this.#options.victimsBudgetMs ?? DEFAULT_VICTIMS_BUDGET_MS;
    let iterator: Iterator<unknown> | undefined;
    /** Whether the plugin's iterator is done with (ran out, or threw itself). */
    let finished = false;
    let slow = false;
    try {
      iterator = iteratorOf(policy.victims(bytesNeeded));
      for (;;) {
        let step: unknown;
        try {
          step = iterator.next();
        } catch (error) {
          finished = true;
          throw error;
        }
        swallow(step);
        if (typeof step !== 'object' || step === null)
          throw new Error(`its victims iterator gave ${describe(step)}`);
        const { done, value } = step as IteratorResult<unknown>;
        if (done === true) finished = true;
        if (clock !== undefined && clock() - started > budget) {
          slow = true;
          return this.#slowWalk(budget);
        }
        if (finished) return true;
        if (this.#isFreshVictim(value, view, walk, resumed)) yield value as number;
      }
    } catch (error) {
      this.#fail('victims', error);
      return false;
    } finally {
      if (clock !== undefined && !slow) this.#slowInARow = 0;
      // Stopped early (by the caller, the budget or a bad victim): let the plugin's
      // generator run its `finally` blocks. A failure there counts only while it serves.
      if (!finished && iterator?.return !== undefined) {
        try {
          swallow(iterator.return());
        } catch (error) {
          if (this.#active === policy) this.#fail('victims', error);
        }
      }
    }
  }

  /** A walk past its budget ends there; enough of them in a row drop the plugin. */
  #slowWalk(budget: number): boolean {
    this.#slowWalks++;
    const limit = this.#options.slowWalksToFallback ?? DEFAULT_SLOW_WALKS_TO_FALLBACK;
    if (++this.#slowInARow < limit) return true;
    this.#fail('victims', new Error(`${limit} victims walks in a row took over ${budget} ms`));
    return false;
  }

  /**
   * Throws for a victim that is no live handle, or one named twice; false for one the walk's
   * failed policy named already, which the fallback resuming the walk skips.
   */
  #isFreshVictim(value: unknown, view: EntryTableView, walk: number, resumed: boolean): boolean {
    if (
      typeof value !== 'number' ||
      !Number.isInteger(value) ||
      value < 0 ||
      value >= this.#namedIn.length ||
      !view.has(value)
    )
      throw new Error(`victims named ${describe(value)}, not a live entry's handle`);
    if (this.#namedIn[value] === walk) {
      if (resumed) return false;
      throw new Error(`victims named ${value} twice in one walk`);
    }
    this.#namedIn[value] = walk;
    return true;
  }

  #startWalk(handleLimit: number): number {
    if (this.#namedIn.length < handleLimit || this.#walks === 0xffff_ffff) {
      this.#namedIn = new Uint32Array(Math.max(handleLimit, this.#namedIn.length * 2, 16));
      this.#walks = 0;
    }
    return ++this.#walks;
  }

  #notify(hook: NotifyHook, handle: number): void {
    const policy = this.#active;
    if (policy === null) return;
    try {
      const returned: unknown = policy[hook](handle);
      if (returned !== undefined) this.#returned(hook, returned);
    } catch (error) {
      this.#fail(hook, error);
    }
  }

  /** Hooks are synchronous: one that returns a promise has work left outside the apply. */
  #returned(hook: PolicyHook, returned: unknown): void {
    if (swallow(returned)) this.#fail(hook, new Error(RETURNED_PROMISE));
  }

  /** Counts the failure; the plugin's first drops it, and the fallback's drops that. */
  #fail(hook: PolicyHook, error: unknown): void {
    this.#failures[hook]++;
    if (this.#serving === 'none') return;
    const dropped = this.#activeName;
    const reason = `${hook}: ${describeError(error)}`;
    this.#plugin = this.#active = null;
    this.#activeName = 'none';
    if (this.#serving === 'plugin') {
      this.#fallbackReason = reason;
      this.#activateFallback();
    } else {
      this.#serving = 'none';
      this.#fallbackReason += `; then the fallback failed, ${reason}`;
    }
    this.#options.onFallback?.({
      plugin: this.#configured,
      dropped,
      active: this.#activeName,
      hook,
      reason,
    });
  }

  #activateFallback(): void {
    const { fallback } = this.#options;
    const view = this.#view;
    this.#serving = 'none';
    if (fallback === undefined || view === null) return;
    try {
      const policy = fallback();
      policy.attach(view);
      this.#active = policy;
      this.#activeName = policy.name;
      this.#serving = 'fallback';
    } catch (error) {
      this.#failures.attach++;
      this.#fallbackReason += `; the fallback could not start: ${describeError(error)}`;
    }
  }
}

/** The iterator of a plugin's `victims` result, or a clear error about what it returned. */
function iteratorOf(returned: unknown): Iterator<unknown> {
  swallow(returned);
  const method =
    typeof returned === 'object' && returned !== null
      ? (returned as { [Symbol.iterator]?: unknown })[Symbol.iterator]
      : undefined;
  if (typeof method !== 'function')
    throw new Error(`victims returned ${describe(returned)}, not an iterable`);
  const iterator: unknown = method.call(returned);
  if (
    typeof iterator !== 'object' ||
    iterator === null ||
    typeof (iterator as { next?: unknown }).next !== 'function'
  )
    throw new Error('victims returned an iterable without an iterator');
  return iterator as Iterator<unknown>;
}

/** Whether `value` is a thenable; if so its rejection is caught, never left unhandled. */
function swallow(value: unknown): boolean {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  const then = (value as { then?: unknown }).then;
  if (typeof then !== 'function') return false;
  then.call(value, undefined, () => {});
  return true;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40));
  if (typeof value === 'number' || typeof value === 'boolean' || value === undefined)
    return String(value);
  return value === null ? 'null' : `a ${typeof value}`;
}

/** The plugin's own message, read defensively (its getters are plugin code too). */
function describeError(error: unknown): string {
  let message: string;
  try {
    message =
      error instanceof Error ? `${error.name}: ${error.message}` : `threw ${describe(error)}`;
  } catch {
    message = 'threw something unreadable';
  }
  return message.length > MAX_REASON ? `${message.slice(0, MAX_REASON)}…` : message;
}
