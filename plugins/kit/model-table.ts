// The conformance kit's stand-in for the store: an `EntryTableView` over a few plain arrays,
// with the store's habits that a policy must cope with (handles reused after removal, most
// recently freed first; `lastAccessed` moved by writes and reads), and the policy notified
// of every change the way the store notifies it. Its clock ticks once per operation, so
// `lastAccessed` is also the order of touches.
import type { EntryTableView, EvictionPolicy } from '../../src/cache/eviction-policy.ts';

/** What the kit knows about one live entry, for the order a policy declares. */
export interface ModelEntry {
  readonly handle: number;
  readonly key: string;
  readonly bytes: number;
  /** Absolute expiry, or 0 for none. */
  readonly expiresAt: number;
  readonly createdAt: number;
  readonly version: number;
  /** Tick of the last insert, update or read. */
  readonly lastAccessed: number;
  /** Inserts, updates and reads since the entry was inserted (1 after the insert). */
  readonly uses: number;
}

type MutableEntry = { -readonly [field in keyof ModelEntry]: ModelEntry[field] };

export class ModelTable implements EntryTableView {
  #entries: (MutableEntry | undefined)[] = [];
  #index = new Map<string, number>();
  #free: number[] = [];
  #clock = 0;
  #policy: EvictionPolicy | null;

  /** With `policy`, every change is also notified to it (attach it yourself, or call `attach`). */
  constructor(policy: EvictionPolicy | null = null) {
    this.#policy = policy;
  }

  get size(): number {
    return this.#index.size;
  }

  get handleLimit(): number {
    return this.#entries.length;
  }

  get now(): number {
    return this.#clock;
  }

  has(handle: number): boolean {
    return this.#entries[handle] !== undefined;
  }

  key(handle: number): string {
    return this.#entry(handle).key;
  }

  bytes(handle: number): number {
    return this.#entry(handle).bytes;
  }

  expiresAt(handle: number): number {
    return this.#entry(handle).expiresAt;
  }

  createdAt(handle: number): number {
    return this.#entry(handle).createdAt;
  }

  version(handle: number): number {
    return this.#entry(handle).version;
  }

  lastAccessed(handle: number): number {
    return this.#entry(handle).lastAccessed;
  }

  *handles(): IterableIterator<number> {
    for (const handle of this.#index.values()) yield handle;
  }

  /** The entry at `handle`, as the kit's orders see it. */
  entry(handle: number): ModelEntry {
    return this.#entry(handle);
  }

  handleOf(key: string): number {
    return this.#index.get(key) ?? -1;
  }

  /** Attaches the policy this table notifies. */
  attach(policy: EvictionPolicy): void {
    this.#policy = policy;
    policy.attach(this);
  }

  insert(key: string, bytes: number, expiresAt = 0): number {
    if (this.#index.has(key)) throw new Error(`model: ${key} is already present`);
    const handle = this.#free.pop() ?? this.#entries.length;
    const now = ++this.#clock;
    this.#entries[handle] = {
      handle,
      key,
      bytes,
      expiresAt,
      createdAt: now,
      version: now,
      lastAccessed: now,
      uses: 1,
    };
    this.#index.set(key, handle);
    this.#policy?.onInsert(handle);
    return handle;
  }

  /** An overwrite: new size and expiry, a new version, and a touch. */
  update(handle: number, bytes: number, expiresAt: number): void {
    const entry = this.#entry(handle);
    const now = ++this.#clock;
    entry.bytes = bytes;
    entry.expiresAt = expiresAt;
    entry.version = now;
    entry.lastAccessed = now;
    entry.uses++;
    this.#policy?.onUpdate(handle);
  }

  /** A read hit. */
  access(handle: number): void {
    const entry = this.#entry(handle);
    entry.lastAccessed = ++this.#clock;
    entry.uses++;
    this.#policy?.onAccess(handle);
  }

  /** As the store does, the policy hears of the removal once the entry is gone. */
  remove(handle: number): void {
    const entry = this.#entry(handle);
    this.#index.delete(entry.key);
    this.#entries[handle] = undefined;
    this.#free.push(handle);
    this.#policy?.onRemove(handle);
  }

  #entry(handle: number): MutableEntry {
    const entry = this.#entries[handle];
    if (entry === undefined) throw new Error(`model: handle ${handle} is not live`);
    return entry;
  }
}
