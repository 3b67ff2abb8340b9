/**
 * `raftcache`: `start` one node, `dev` the local 3-node cluster, and client commands against
 * a running cluster through the SDK. Exit codes: 0 done; 1 not found (or a condition did not
 * hold); 2 an error (bad usage, unreachable cluster, a refused request); 3 a write whose
 * outcome is unknown. Output goes through `CliIo`, so that the same code runs in tests.
 */
import { parseArgs } from 'node:util';
import { CacheClient, OutcomeUnknownError, RaftcacheError } from '../client/index.ts';
import { describeSettings } from '../server/config.ts';
import {
  CLIENT_COMMANDS,
  type ClientCommand,
  type Flags,
  integerFlag,
  UsageError,
} from './client-commands.ts';

/** Where the CLI reads and writes: the process's streams and environment, or a test's. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: AsyncIterable<Buffer | string>;
}

const EXIT = { done: 0, notFound: 1, error: 2, outcomeUnknown: 3 } as const;
const DEFAULT_SEEDS = '127.0.0.1:7401';

const COMMON_OPTIONS = {
  seeds: {
    type: 'string',
    help: `node addresses, comma-separated (env RAFTCACHE_SEEDS; default ${DEFAULT_SEEDS})`,
  },
  json: { type: 'boolean', help: 'print JSON, for scripts' },
  timeout: { type: 'string', help: 'the call deadline, ms (default 5000)' },
  help: { type: 'boolean', help: 'print this help' },
} as const;

const EXIT_CODES_HELP = `exit codes: 0 done, 1 not found (or a condition did not hold), 2 error, 3 write outcome unknown`;

function overview(): string {
  const width = Math.max(...Object.keys(CLIENT_COMMANDS).map((c) => c.length)) + 2;
  return [
    'usage: raftcache <command> [arguments] [options]',
    '',
    'cluster:',
    `  ${'start'.padEnd(width)}runs one node (flags as src/server/config.ts; see raftcache start --help)`,
    `  ${'dev'.padEnd(width)}runs a local cluster of three nodes on 127.0.0.1:7401-7403`,
    '',
    'client commands (against a running cluster):',
    ...Object.entries(CLIENT_COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.summary}`),
    '',
    'raftcache <command> --help tells more.',
    EXIT_CODES_HELP,
  ].join('\n');
}

function commandHelp(name: string, command: ClientCommand): string {
  const options = { ...command.options, ...COMMON_OPTIONS };
  const flags = Object.entries(options).map(
    ([flag, o]) => `${o.type === 'string' ? `--${flag} <value>` : `--${flag}`}`,
  );
  const width = Math.max(...flags.map((f) => f.length)) + 2;
  return [
    `usage: raftcache ${name} ${command.args}`.trimEnd(),
    '',
    command.summary,
    '',
    'options:',
    ...Object.values(options).map((o, i) => `  ${flags[i].padEnd(width)}${o.help}`),
    '',
    EXIT_CODES_HELP,
  ].join('\n');
}

const START_HELP = [
  'usage: raftcache start [flags]',
  '',
  'Runs one node until SIGTERM or SIGINT (it hands its leaderships away first). Every flag',
  'can also come from the environment (RAFTCACHE_NODE_ID, ...) or a JSON file (--config).',
  'A new cluster: --bootstrap --initial-nodes n1=host:port,n2=host:port,...',
  '',
  'flags:',
  '  --config <path>',
  ...describeSettings().map((line) => `  ${line}`),
].join('\n');

const DEV_HELP = [
  'usage: raftcache dev [--base-port <port>]',
  '',
  'Runs a local cluster of three node processes on 127.0.0.1:<base-port> and the two ports',
  'after it (default 7401, or RAFTCACHE_BASE_PORT). Ctrl-C stops it.',
].join('\n');

/** Runs a client command; resolves with its exit code. */
async function runClientCommand(name: string, command: ClientCommand, argv: string[], io: CliIo) {
  const options = Object.fromEntries(
    Object.entries({ ...command.options, ...COMMON_OPTIONS }).map(([flag, o]) => [
      flag,
      flag === 'help' ? { type: o.type, short: 'h' } : { type: o.type },
    ]),
  );
  let json = argv.includes('--json');
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true });
    const flags = values as Flags;
    json = flags.json === true;
    if (flags.help) return printed(io, commandHelp(name, command));
    checkArity(name, command, positionals);
    const seeds = String(flags.seeds ?? io.env.RAFTCACHE_SEEDS ?? DEFAULT_SEEDS).split(',');
    const deadlineMs = integerFlag(flags, 'timeout', 1) ?? 5_000;
    const client = new CacheClient({ seeds: seeds.map((s) => s.trim()), deadlineMs });
    try {
      const result = await command.run({
        client,
        args: positionals,
        flags,
        deadlineMs,
        stdin: io.stdin,
      });
      if (json) io.out(JSON.stringify(result.json));
      else if (result.human) io.out(result.human);
      else if (result.code === EXIT.notFound) io.err('(not found)');
      return result.code;
    } finally {
      await client.close();
    }
  } catch (error) {
    return report(io, name, error, json);
  }
}

function checkArity(name: string, command: ClientCommand, positionals: string[]): void {
  const n = positionals.length;
  if (n < command.min || (command.max !== undefined && n > command.max) || (command.pairs && n % 2))
    throw new UsageError(
      `raftcache ${name} takes ${command.args || 'no arguments'} (got ${n === 0 ? 'none' : positionals.map((p) => JSON.stringify(p)).join(' ')})`,
    );
}

/** Prints an error (as JSON on stdout with --json) and gives its exit code. */
function report(io: CliIo, name: string, error: unknown, json: boolean): number {
  const known = error instanceof RaftcacheError;
  const usage =
    error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  const code = known ? error.code : usage ? 'USAGE' : 'INTERNAL';
  const message = (error as Error).message;
  if (json) io.out(JSON.stringify({ error: { code, message } }));
  else {
    io.err(`raftcache ${name}: ${known ? `${code}: ` : ''}${message}`);
    if (usage) io.err(`see raftcache ${name} --help`);
    if (code === 'CLUSTER_UNREACHABLE')
      io.err('is a cluster running there? (npm start runs one; --seeds says where)');
  }
  return error instanceof OutcomeUnknownError ? EXIT.outcomeUnknown : EXIT.error;
}

function printed(io: CliIo, help: string): number {
  io.out(help);
  return EXIT.done;
}

/**
 * Runs one command line; resolves with its exit code, or undefined for `start` and `dev`,
 * which run until signalled.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number | undefined> {
  const [name, ...rest] = argv;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    if (name === undefined) io.err(overview());
    else io.out(overview());
    return name === undefined ? EXIT.error : EXIT.done;
  }
  if (name === 'start') {
    if (wantsHelp) return printed(io, START_HELP);
    // Loaded only here: a client command does not need the server.
    const { runNode } = await import('../server/main.ts');
    await runNode(rest, io.env);
    return undefined; // runs until signalled
  }
  if (name === 'dev') {
    try {
      const { values } = parseArgs({
        args: rest,
        options: { 'base-port': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      });
      if (values.help) return printed(io, DEV_HELP);
      const { runDevCluster } = await import('../server/dev.ts');
      runDevCluster(integerFlag(values, 'base-port', 1));
      return undefined;
    } catch (error) {
      return report(io, name, error, false);
    }
  }
  const command = CLIENT_COMMANDS[name];
  if (!command) {
    io.err(`raftcache: no command "${name}"\n\n${overview()}`);
    return EXIT.error;
  }
  return runClientCommand(name, command, rest, io);
}
