// The eviction-plugin interface: the only thing a plugin under `plugins/` imports from `src`.
//
// The store names each live entry by a small integer handle (its slot), stable while the
// entry lives and reused after it is removed. Notifications carry only the handle, so the
// hot paths (a GET is one `onAccess`) allocate nothing, and a policy can keep its own state
// in typed arrays indexed by handle, as node-lru-cache does. Anything else it needs it reads
// from the `EntryTableView` given to `attach`.
//
// Who calls what:
// - every replica's store calls `onInsert`, `onUpdate` and `onRemove` as it applies the log,
//   each once its change is made, and `onAccess` as it serves reads, so a follower's policy
//   is warm when it is promoted;
// - only the leader asks for `victims`, inside `prepare`, which must not change anything: a
//   `victims` call is a read-only walk. The deletes it leads to come back through the log;
// - the host calls `rebuild` when its replica becomes leader or has restored a snapshot, so
//   a policy can relearn its order from the entries' metadata (`lastAccessed`, `createdAt`,
//   `expiresAt`, `size`) instead of trusting what it saw as a follower.
//
// Hooks are synchronous and must not throw. A plugin is untrusted code, so the store calls
// it only through policy-guard.ts: a hook that throws or returns a promise, a victim that is
// not a live handle or is named twice, or walks over their time budget get the plugin
// dropped for the built-in fallback, never a change to replicated state.
//
// A plugin module exports `createPolicy(options?)`; plugin-loader.ts loads one by module path
// (or by a name in the registry the composition root gives it: `lru`, `lfu`, `ttl`), and the
// store attaches it to a frozen read-only view of its entries. plugins/README.md is the
// author's guide, and plugins/kit/conformance.ts checks a policy against this contract.
//
// Example, a FIFO policy (evicts the oldest write first):
//
//   export class FifoPolicy implements EvictionPolicy {
//     readonly name = 'fifo';
//     #view!: EntryTableView;
//     attach(view: EntryTableView) { this.#view = view; }
//     onInsert() {}
//     onUpdate() {}
//     onAccess() {}
//     onRemove() {}
//     *victims() {
//       const handles = [...this.#view.handles()];
//       handles.sort((a, b) => this.#view.createdAt(a) - this.#view.createdAt(b));
//       yield* handles;
//     }
//     rebuild() {}
//   }

/** Read-only view of the store's entries, by handle. Times are epoch ms. */
export interface EntryTableView {
  /** How many entries are live. */
  readonly size: number;
  /** Every handle is below this bound (it grows as the table grows). */
  readonly handleLimit: number;
  /** Whether `handle` names a live entry. */
  has(handle: number): boolean;
  key(handle: number): string;
  /** Bytes charged for the entry: key (UTF-8) + value + the fixed per-entry overhead. */
  bytes(handle: number): number;
  /** Absolute expiry time, or 0 for none. */
  expiresAt(handle: number): number;
  createdAt(handle: number): number;
  /** Raft index of the write that produced the entry. */
  version(handle: number): number;
  /** Replica-local: when a read or write last touched the entry. */
  lastAccessed(handle: number): number;
  /** Live handles, in no particular order. */
  handles(): IterableIterator<number>;
}

export interface EvictionPolicy {
  /** Short name for STATS and logs, like `lru`. */
  readonly name: string;
  /** Called once, before any other method, with the view of the store it serves. */
  attach(view: EntryTableView): void;
  /** A new entry now lives at `handle`. */
  onInsert(handle: number): void;
  /** The entry at `handle` was overwritten or its expiry changed. */
  onUpdate(handle: number): void;
  /** A read hit the entry at `handle`. Keep this cheap: it runs on every GET. */
  onAccess(handle: number): void;
  /** The entry at `handle` is gone; the handle may be reused by a later insert. */
  onRemove(handle: number): void;
  /**
   * Live handles in the order they should go, best victim first, each at most once, for a
   * write that needs `bytesNeeded` more bytes (a hint, for policies that sample). The store
   * pulls only as many as it needs and skips keys the write itself touches, so a lazy
   * generator is best. A walk that ends early leaves the write refused as full. Must not
   * change the policy's state.
   */
  victims(bytesNeeded: number): Iterable<number>;
  /** Relearn the order from the view's metadata: on becoming leader, after a restore. */
  rebuild(): void;
}
