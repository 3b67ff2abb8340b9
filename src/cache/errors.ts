// Errors of the cache state machine. Each class has a stable `code` that the server maps to
// one gRPC status; messages name the problem and the limit that was crossed.

/** Every code a `CacheError` may carry: a closed set, each mapped to one gRPC status. */
export type CacheErrorCode =
  | 'INVALID_COMMAND'
  | 'KEY_TOO_LONG'
  | 'VALUE_TOO_LARGE'
  | 'INVALID_TTL'
  | 'ENTRY_TOO_LARGE'
  | 'SNAPSHOT_CORRUPT'
  | 'SNAPSHOT_IN_PROGRESS'
  | 'UNSUPPORTED_FORMAT'
  | 'PLUGIN_NOT_FOUND'
  | 'INVALID_PLUGIN'
  | 'INVARIANT';

export class CacheError extends Error {
  readonly code: CacheErrorCode;

  constructor(code: CacheErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The command is structurally wrong (missing field, wrong type, unknown op). */
export class InvalidCommandError extends CacheError {
  constructor(message: string) {
    super('INVALID_COMMAND', message);
  }
}

export class KeyTooLongError extends CacheError {
  constructor(bytes: number, limit: number) {
    super('KEY_TOO_LONG', `key is ${bytes} bytes; the limit is ${limit}`);
  }
}

export class ValueTooLargeError extends CacheError {
  constructor(bytes: number, limit: number) {
    super('VALUE_TOO_LARGE', `value is ${bytes} bytes; the limit is ${limit}`);
  }
}

export class InvalidTtlError extends CacheError {
  constructor(message: string) {
    super('INVALID_TTL', message);
  }
}

/** The entry (key + value + per-entry overhead) is larger than the whole shard. */
export class EntryTooLargeError extends CacheError {
  constructor(bytes: number, capacity: number) {
    super(
      'ENTRY_TOO_LARGE',
      `entry needs ${bytes} bytes but the shard capacity is ${capacity}: it can never fit`,
    );
  }
}

export class SnapshotCorruptError extends CacheError {
  constructor(message: string) {
    super('SNAPSHOT_CORRUPT', message);
  }
}

export class SnapshotInProgressError extends CacheError {
  constructor() {
    super('SNAPSHOT_IN_PROGRESS', 'a snapshot of this store is already being taken');
  }
}

export class UnsupportedFormatError extends CacheError {
  constructor(version: number, supported: number) {
    super(
      'UNSUPPORTED_FORMAT',
      `format version ${version} is not supported (this build reads ${supported})`,
    );
  }
}

/** The eviction plugin named in the config is neither a built-in nor a module that exists. */
export class PluginNotFoundError extends CacheError {
  constructor(spec: string, where: string) {
    super(
      'PLUGIN_NOT_FOUND',
      `eviction plugin '${spec}' is not a built-in (lru, lfu, ttl) and no module exists at ${where}`,
    );
  }
}

/** The plugin module loaded but does not provide a valid `EvictionPolicy`. */
export class InvalidPluginError extends CacheError {
  constructor(spec: string, problem: string) {
    super('INVALID_PLUGIN', `eviction plugin '${spec}' ${problem}`);
  }
}
