import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { NODE_NAME, REGION_NAME } from '../cluster/membership-limits.ts';
import { isHostPort } from '../transport/shared-port.ts';

/**
 * A node's configuration. Sources, each overriding the one before: defaults, a JSON file
 * (`--config path`), environment variables (`RAFTCACHE_` + the upper-snake name, e.g.
 * `RAFTCACHE_NODE_ID`), command-line flags (`--node-id`, kebab-case). Lists are comma-separated
 * in the environment and in flags; sizes accept `KiB`, `MiB` and `GiB`.
 *
 * The timing defaults suit a 2-core machine running three nodes and a load generator: an
 * event loop stalled for 100 ms must not start elections, so an election timeout is 300 to
 * 600 ms (12 to 24 ticks of 25 ms).
 */
export interface NodeConfig {
  readonly nodeId: string;
  /** Where the node's gRPC server listens (public API and peers), `host:port`. */
  readonly listen: string;
  /** The address clients and peers are told to use (behind NAT, a proxy): `listen` by default. */
  readonly advertise: string;
  /** Addresses of nodes of an existing cluster, to join through. */
  readonly seeds: readonly string[];
  /** Start a new cluster with this node (and `initialNodes`), instead of joining one. */
  readonly bootstrap: boolean;
  /** Node addresses of a new cluster, `nodeId=host:port`, this one included. */
  readonly initialNodes: readonly string[];
  /** For the LevelDB write-ahead log; none keeps everything in memory only. */
  readonly dataDir: string | undefined;
  readonly capacityBytes: number;
  readonly region: string;
  readonly shards: number;
  readonly replicationFactor: number;
  /** An eviction policy by name (`lru`, `lfu`, `ttl`) or by module path. */
  readonly eviction: string;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly leaseDriftMarginMs: number;
  /** Per-link address overrides, `nodeId=host:port` (the chaos suite routes links through proxies). */
  readonly peerAddresses: readonly string[];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly code = 'BAD_CONFIG';
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.problems = problems;
  }
}

const DEFAULTS: Omit<NodeConfig, 'nodeId' | 'advertise'> = {
  listen: '127.0.0.1:7401',
  seeds: [],
  bootstrap: false,
  initialNodes: [],
  dataDir: undefined,
  capacityBytes: 256 * 2 ** 20,
  region: 'default',
  shards: 16,
  replicationFactor: 3,
  eviction: 'lru',
  tickMs: 25,
  electionTicks: 12,
  heartbeatTicks: 2,
  leaseDriftMarginMs: 50,
  peerAddresses: [],
};

type Kind = 'string' | 'list' | 'size' | 'integer' | 'boolean';
const FIELDS: Readonly<Record<keyof NodeConfig, Kind>> = {
  nodeId: 'string',
  listen: 'string',
  advertise: 'string',
  seeds: 'list',
  bootstrap: 'boolean',
  initialNodes: 'list',
  dataDir: 'string',
  capacityBytes: 'size',
  region: 'string',
  shards: 'integer',
  replicationFactor: 'integer',
  eviction: 'string',
  tickMs: 'integer',
  electionTicks: 'integer',
  heartbeatTicks: 'integer',
  leaseDriftMarginMs: 'integer',
  peerAddresses: 'list',
};

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (name: string) => `RAFTCACHE_${kebab(name).replaceAll('-', '_').toUpperCase()}`;
const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
};

/** Reads and validates a node's configuration; throws one `ConfigError` naming every problem. */
export function loadConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): NodeConfig {
  const options: Record<string, { type: 'string' | 'boolean' }> = { config: { type: 'string' } };
  for (const [name, kind] of Object.entries(FIELDS))
    options[kebab(name)] = { type: kind === 'boolean' ? 'boolean' : 'string' };
  const problems: string[] = [];
  let flags: Record<string, string | boolean | undefined> = {};
  try {
    flags = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new ConfigError([(error as Error).message]);
  }
  const file = typeof flags.config === 'string' ? readConfigFile(flags.config, problems) : {};
  const raw: Record<string, unknown> = {};
  for (const name of Object.keys(FIELDS)) {
    raw[name] = flags[kebab(name)] ?? env[envName(name)] ?? file[name];
  }
  for (const name of Object.keys(file))
    if (!(name in FIELDS)) problems.push(`unknown setting "${name}" in ${flags.config}`);

  const config: Record<string, unknown> = { ...DEFAULTS };
  for (const [name, kind] of Object.entries(FIELDS) as [keyof NodeConfig, Kind][]) {
    if (raw[name] === undefined) continue;
    const value = parseValue(raw[name], kind);
    if (value === undefined)
      problems.push(`${name} (${kebab(name)}): "${String(raw[name])}" is not a valid ${kind}`);
    else config[name] = value;
  }
  config.advertise ??= config.listen;
  problems.push(...validate(config as unknown as NodeConfig));
  if (problems.length > 0) throw new ConfigError(problems);
  return config as unknown as NodeConfig;
}

function readConfigFile(path: string, problems: string[]): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
    problems.push(`${path} must hold a JSON object`);
  } catch (error) {
    problems.push(`cannot read ${path}: ${(error as Error).message}`);
  }
  return {};
}

function parseValue(value: unknown, kind: Kind): unknown {
  switch (kind) {
    case 'string':
      return typeof value === 'string' && value.length > 0 ? value : undefined;
    case 'boolean':
      if (typeof value === 'boolean') return value;
      return value === 'true' ? true : value === 'false' ? false : undefined;
    case 'list':
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
      return typeof value === 'string'
        ? value
            .split(',')
            .map((v) => v.trim())
            .filter((v) => v.length > 0)
        : undefined;
    case 'integer': {
      const n =
        typeof value === 'number'
          ? value
          : typeof value === 'string' && /^\d+$/.test(value)
            ? Number(value)
            : Number.NaN;
      return Number.isSafeInteger(n) ? n : undefined;
    }
    case 'size': {
      if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
      const match = typeof value === 'string' ? /^(\d+)\s*([a-zA-Z]*)$/.exec(value.trim()) : null;
      const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
      return match && unit !== undefined ? Number(match[1]) * unit : undefined;
    }
  }
}

const ADDRESS = /^(\[[0-9a-fA-F:]+\]|[a-zA-Z0-9.-]+):(\d{1,5})$/;
/** `host:port`, the port in range: 0 (any free port) only where the node listens. */
const isAddress = (address: string, anyPort = false) =>
  ADDRESS.test(address) && isHostPort(address) && (anyPort || !address.endsWith(':0'));
/** `id=host:port`. */
function isNamedAddress(entry: string): boolean {
  const equals = entry.indexOf('=');
  return NODE_NAME.test(entry.slice(0, equals)) && isAddress(entry.slice(equals + 1));
}

function validate(c: NodeConfig): string[] {
  const problems: string[] = [];
  if (c.nodeId === undefined)
    problems.push('node-id is required (flag --node-id, or RAFTCACHE_NODE_ID)');
  else if (!NODE_NAME.test(c.nodeId))
    problems.push(`node-id "${c.nodeId}": 1 to 64 letters, digits, _ or -`);
  if (!REGION_NAME.test(c.region))
    problems.push(`region "${c.region}": 1 to 64 letters, digits, _, . or -`);
  if (!isAddress(c.listen, true)) problems.push(`listen "${c.listen}" is not host:port`);
  if (!isAddress(c.advertise))
    problems.push(
      `advertise "${c.advertise}" is not a host:port peers and clients can dial (listening on port 0 needs --advertise)`,
    );
  for (const seed of c.seeds)
    if (!isAddress(seed)) problems.push(`seed "${seed}" is not host:port`);
  for (const node of c.initialNodes)
    if (!isNamedAddress(node)) problems.push(`initial node "${node}" is not id=host:port`);
  for (const link of c.peerAddresses)
    if (!isNamedAddress(link)) problems.push(`peer address "${link}" is not id=host:port`);
  if (!c.bootstrap && c.seeds.length === 0)
    problems.push('either --bootstrap a new cluster, or give --seeds of one to join');
  if (c.bootstrap && c.seeds.length > 0)
    problems.push('--bootstrap starts a new cluster: it takes no --seeds');
  if (c.capacityBytes < 2 ** 20)
    problems.push(`capacity ${c.capacityBytes} bytes is below the 1 MiB minimum`);
  if (c.shards < 1 || c.shards > 16384) problems.push(`shards ${c.shards}: from 1 to 16384`);
  if (c.replicationFactor < 1 || c.replicationFactor > 7)
    problems.push(`replication-factor ${c.replicationFactor}: from 1 to 7`);
  if (c.tickMs < 1) problems.push('tick-ms must be at least 1');
  if (c.heartbeatTicks < 1 || c.heartbeatTicks >= c.electionTicks) {
    problems.push(
      `heartbeat-ticks (${c.heartbeatTicks}) must be at least 1 and below election-ticks (${c.electionTicks})`,
    );
  }
  if (c.leaseDriftMarginMs >= (c.electionTicks - 1) * c.tickMs) {
    problems.push(
      'lease-drift-margin-ms leaves no lease: keep it below (election-ticks - 1) × tick-ms',
    );
  }
  return problems;
}

/** Every setting as its flag, with its kind and default, one a line (for `--help`). */
export function describeSettings(): string[] {
  const flags = Object.entries(FIELDS).map(([name, kind]) => {
    const fallback = (DEFAULTS as Readonly<Record<string, unknown>>)[name];
    const shown = Array.isArray(fallback) ? fallback.join(',') : fallback;
    return {
      flag: kind === 'boolean' ? `--${kebab(name)}` : `--${kebab(name)} <${kind}>`,
      fallback: shown === undefined || shown === '' || shown === false ? '' : `default ${shown}`,
    };
  });
  const width = Math.max(...flags.map((f) => f.flag.length)) + 2;
  return flags.map((f) => `${f.flag.padEnd(width)}${f.fallback}`.trimEnd());
}
