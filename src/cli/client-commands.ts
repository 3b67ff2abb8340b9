// The CLI's client commands, each a thin layer over one SDK call: its arguments, its
// options, and what it prints for people (`human`) and for scripts (`json`).
import type { CacheClient, ReadOptions } from '../client/index.ts';
import { table, valueJson, valueText } from './output.ts';

/** 0: done; 1: not found, or a condition did not hold. */
export interface CommandResult {
  readonly code: 0 | 1;
  readonly human: string;
  readonly json: unknown;
}

export type Flags = Readonly<Record<string, string | boolean | undefined>>;

export interface ClientCommand {
  /** Arguments, as the help shows them. */
  readonly args: string;
  readonly summary: string;
  /** Positional arguments: at least `min`, at most `max` (unbounded when absent). */
  readonly min: number;
  readonly max?: number;
  readonly options?: Readonly<
    Record<string, { readonly type: 'string' | 'boolean'; readonly help: string }>
  >;
  /** Whether positionals come in key-value pairs. */
  readonly pairs?: boolean;
  run(context: CommandContext): Promise<CommandResult>;
}

export interface CommandContext {
  readonly client: CacheClient;
  readonly args: string[];
  readonly flags: Flags;
  readonly deadlineMs: number;
  /** Where a value given as `-` is read from. */
  readonly stdin: AsyncIterable<Buffer | string>;
}

/** A bad command line: the message says what is wrong. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A flag that must be a whole number (of milliseconds, or a version). */
export function integerFlag(flags: Flags, name: string, min: number): number | undefined {
  const text = flags[name];
  if (text === undefined) return undefined;
  const n = typeof text === 'string' && /^-?\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`--${name} must be a whole number of at least ${min}, not "${text}"`);
  return n;
}

/** A positional whole number. */
function integerArg(text: string, what: string): number {
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text)))
    throw new UsageError(`${what} must be a whole number, not "${text}"`);
  return Number(text);
}

/** The value argument, or standard input when it is `-`. */
async function valueArg(
  text: string,
  stdin: AsyncIterable<Buffer | string>,
): Promise<string | Buffer> {
  if (text !== '-') return text;
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

const found = (code: boolean): 0 | 1 => (code ? 0 : 1);

/** The options of a read that may be stale: `--stale`, bounded by `--max-staleness ms`. */
const READ_OPTIONS = {
  stale: { type: 'boolean', help: 'read from any replica, possibly behind' },
  'max-staleness': {
    type: 'string',
    help: 'with --stale (implied): ms since the replica last heard from its leader, at most',
  },
} as const;

function readOptions(flags: Flags): ReadOptions {
  const maxStalenessMs = integerFlag(flags, 'max-staleness', 1);
  if (maxStalenessMs !== undefined) return { consistency: 'stale', maxStalenessMs };
  return { consistency: flags.stale ? 'stale' : 'linearizable' };
}

export const CLIENT_COMMANDS: Readonly<Record<string, ClientCommand>> = {
  get: {
    args: '<key>',
    summary: "Prints the key's value (exit 1 when there is none).",
    min: 1,
    max: 1,
    options: READ_OPTIONS,
    async run({ client, args: [key], flags, deadlineMs }) {
      const entry = await client.getEntry(key, { deadlineMs, ...readOptions(flags) });
      if (!entry) return { code: 1, human: '', json: { key, found: false } };
      return {
        code: 0,
        human: valueText(entry.value),
        json: {
          key,
          found: true,
          ...valueJson(entry.value),
          version: entry.version,
          expiresAtMs: entry.expiresAtMs ?? null,
        },
      };
    },
  },
  set: {
    args: '<key> <value>',
    summary:
      'Stores the value (`-`: read it from standard input). Exit 1 when --nx, --xx or --if-version did not hold.',
    min: 2,
    max: 2,
    options: {
      ttl: { type: 'string', help: 'time to live, ms' },
      nx: { type: 'boolean', help: 'only if the key is absent' },
      xx: { type: 'boolean', help: 'only if the key is present' },
      'keep-ttl': { type: 'boolean', help: 'keep the expiry of the entry it replaces' },
      'if-version': { type: 'string', help: 'only if the live entry has this version' },
    },
    async run({ client, args: [key, value], flags, deadlineMs, stdin }) {
      const result = await client.set(key, await valueArg(value, stdin), {
        deadlineMs,
        ttlMs: integerFlag(flags, 'ttl', 0),
        ifAbsent: flags.nx === true,
        ifPresent: flags.xx === true,
        keepTtl: flags['keep-ttl'] === true,
        ifVersion: integerFlag(flags, 'if-version', 1),
      });
      return {
        code: found(result.applied),
        human: result.applied
          ? `OK (version ${result.version})`
          : 'not applied: the condition did not hold',
        json: { key, applied: result.applied, version: result.version ?? null },
      };
    },
  },
  del: {
    args: '<key>...',
    summary: 'Deletes keys; prints how many existed (exit 1 when none did).',
    min: 1,
    async run({ client, args: keys, deadlineMs }) {
      const removed = await client.del(keys, { deadlineMs });
      return {
        code: found(removed > 0),
        human: `${removed} of ${keys.length} ${keys.length === 1 ? 'key' : 'keys'} removed`,
        json: { removed },
      };
    },
  },
  mget: {
    args: '<key>...',
    summary: 'Prints each key and its value (exit 1 when one has none).',
    min: 1,
    options: READ_OPTIONS,
    async run({ client, args: keys, flags, deadlineMs }) {
      const values = await client.mget(keys, { deadlineMs, ...readOptions(flags) });
      return {
        code: found(values.every((v) => v !== undefined)),
        human: keys
          .map((key, i) => `${key}: ${values[i] ? valueText(values[i]) : '(not found)'}`)
          .join('\n'),
        json: keys.map((key, i) => {
          const value = values[i];
          return value ? { key, found: true, ...valueJson(value) } : { key, found: false };
        }),
      };
    },
  },
  mset: {
    args: '<key> <value> [<key> <value>]...',
    summary: 'Stores pairs: atomically per shard (keys sharing a {hash tag} share a shard).',
    min: 2,
    pairs: true,
    options: { ttl: { type: 'string', help: 'one time to live for every pair, ms' } },
    async run({ client, args, flags, deadlineMs }) {
      const pairs: [string, string][] = [];
      for (let i = 0; i < args.length; i += 2) pairs.push([args[i], args[i + 1]]);
      const result = await client.mset(pairs, { deadlineMs, ttlMs: integerFlag(flags, 'ttl', 0) });
      const shards = result.shards.length;
      return {
        code: 0,
        human: `OK (${pairs.length} ${pairs.length === 1 ? 'key' : 'keys'} on ${shards} ${shards === 1 ? 'shard' : 'shards'})`,
        json: result,
      };
    },
  },
  expire: {
    args: '<key> <ms> | <key> --persist',
    summary:
      'Makes the key expire in <ms> (0 or less: now), or never with --persist (exit 1 when there is no such key).',
    min: 1,
    max: 2,
    options: { persist: { type: 'boolean', help: 'remove the expiry instead' } },
    async run({ client, args: [key, ms], flags, deadlineMs }) {
      if ((ms === undefined) === (flags.persist !== true))
        throw new UsageError('expire takes either <ms> or --persist');
      const existed =
        flags.persist === true
          ? await client.persist(key, { deadlineMs })
          : await client.expire(key, integerArg(ms, '<ms>'), { deadlineMs });
      return {
        code: found(existed),
        human: existed ? 'OK' : `no such key: ${key}`,
        json: { key, found: existed },
      };
    },
  },
  ttl: {
    args: '<key>',
    summary:
      'Prints the milliseconds left before the key expires (exit 1 when there is no such key).',
    min: 1,
    max: 1,
    async run({ client, args: [key], deadlineMs }) {
      const left = await client.ttl(key, { deadlineMs });
      if (left === undefined) return { code: 1, human: '', json: { key, found: false } };
      return {
        code: 0,
        human: left === null ? 'no expiry' : `${left} ms`,
        json: { key, found: true, ttlMs: left },
      };
    },
  },
  stats: {
    args: '',
    summary: "Prints every node's statistics, per shard replica.",
    min: 0,
    max: 0,
    async run({ client, deadlineMs }) {
      const nodes = await client.stats({ deadlineMs });
      const rows = nodes.flatMap((node) =>
        'shards' in node
          ? node.shards.map((s) => ({
              node: node.nodeId,
              shard: s.shardId,
              keys: s.keys,
              bytes: s.bytes,
              capacity: s.capacityBytes,
              hits: s.hits,
              misses: s.misses,
              evictions: s.evictions,
              expirations: s.expirations,
              role: s.role,
              eviction: s.eviction.active,
              state: s.state === 'failed' ? `failed: ${s.failure}` : s.state,
            }))
          : [],
      );
      const failed = nodes.flatMap((n) =>
        'error' in n ? [`${n.nodeId} (${n.address}): ${n.error.message}`] : [],
      );
      return {
        code: 0,
        human: [table(rows), ...failed.map((f) => `no answer from ${f}`)].join('\n'),
        json: nodes.map((n) =>
          'error' in n ? { ...n, error: { code: n.error.code, message: n.error.message } } : n,
        ),
      };
    },
  },
  cluster: {
    args: '',
    summary: "Prints the cluster map: nodes, and each shard's slots, leader and replicas.",
    min: 0,
    max: 0,
    async run({ client, deadlineMs }) {
      const map = await client.clusterMap({ deadlineMs });
      const nodes = table(
        map.nodes.map((n) => ({ node: n.id, address: n.address, status: n.status })),
      );
      const shards = table(
        map.shards.map((s) => ({
          shard: s.id,
          slots: s.slots.map((r) => `${r.first}-${r.last}`).join(','),
          leader: s.leader ?? '(none)',
          replicas: s.replicas.join(','),
        })),
      );
      return {
        code: 0,
        human: `cluster ${map.clusterId}, epoch ${map.epoch}, ${map.slotCount} slots\n\n${nodes}\n\n${shards}`,
        json: map,
      };
    },
  },
};
