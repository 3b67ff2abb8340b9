// A third-party plugin that fails in one hook: the sample FIFO plugin until `hook` has been
// called `after` times, then every further call of it throws (with `how: 'reject'`, returns
// a rejected promise instead: the mistake of an `async` hook). With no options, `onInsert`
// fails from its 21st call, so a node can name the file alone in `--eviction`.
import type { EvictionPolicy } from '../../../src/cache/eviction-policy.ts';
import { FifoPolicy } from '../third-party/fifo-policy.ts';

export type FailingHook =
  | 'createPolicy'
  | 'attach'
  | 'onInsert'
  | 'onUpdate'
  | 'onAccess'
  | 'onRemove'
  | 'victims'
  | 'rebuild';

export interface ThrowingOptions {
  readonly hook?: FailingHook;
  /** Calls that work before the failures start. */
  readonly after?: number;
  readonly how?: 'throw' | 'reject';
}

export class PluginBugError extends Error {
  override name = 'PluginBugError';
}

/** Policies made so far, per options object: `createPolicy` fails past `after` of them. */
const made = new WeakMap<ThrowingOptions, number>();

export function createPolicy(options: ThrowingOptions = {}): EvictionPolicy {
  const { hook = 'onInsert', after = 20, how = 'throw' } = options;
  const policy = new FifoPolicy();
  if (hook === 'createPolicy') {
    const count = (made.get(options) ?? 0) + 1;
    made.set(options, count);
    if (count > after) throw new PluginBugError('createPolicy: no more policies');
    return policy;
  }
  const methods = policy as unknown as Record<FailingHook, (...args: unknown[]) => unknown>;
  const original = methods[hook].bind(policy);
  let calls = 0;
  // An own property shadows the class's method, so the policy's internal calls fail too.
  methods[hook] = (...args) => {
    if (++calls <= after) return original(...args);
    const error = new PluginBugError(`${hook} is broken (call ${calls})`);
    if (how === 'reject') return Promise.reject(error);
    throw error;
  };
  return policy;
}
