import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/cli.ts';
import { CacheClient } from '../../src/client/index.ts';
import { keySlot } from '../../src/shard/key-slot.ts';
import { canListen, freePort, ProcessCluster } from '../support/node-processes.ts';

const bin = path.join(import.meta.dirname, '../../bin/raftcache.js');
let cluster: ProcessCluster;
let seeds: string;

beforeAll(async () => {
  cluster = await ProcessCluster.start({ args: ['--shards', '4'] });
  seeds = cluster.addresses.join(',');
  const client = new CacheClient({ seeds: cluster.addresses });
  await client.set('warm-up', 'x', { deadlineMs: 30_000 }); // elections are over
  await client.close();
}, 60_000);

afterAll(() => cluster?.stop());

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the `raftcache` bin as a user would (the seeds from RAFTCACHE_SEEDS unless given). */
function raftcache(args: string[], options: { stdin?: string; seeds?: string } = {}): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, RAFTCACHE_SEEDS: options.seeds ?? seeds },
  });
  child.stdin.end(options.stdin ?? '');
  return finished(child);
}

function finished(child: ChildProcess): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** Runs a command line in this process, as the bin would (same code, output captured). */
async function cli(args: string[], options: { stdin?: string; seeds?: string } = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, {
    out: (text) => out.push(`${text}\n`),
    err: (text) => err.push(`${text}\n`),
    env: { RAFTCACHE_SEEDS: options.seeds ?? seeds },
    stdin: Readable.from([Buffer.from(options.stdin ?? '')]),
  });
  return { code: code ?? null, stdout: out.join(''), stderr: err.join('') };
}

describe('the raftcache bin, as a process', () => {
  it('prints, and exits 0 when done, 1 when not found, 2 on an error', async () => {
    expect(await raftcache(['set', 'bin:k', 'from a process'])).toMatchObject({ code: 0 });
    const [help, found, missing, usage] = await Promise.all([
      raftcache(['--help']),
      raftcache(['get', 'bin:k']),
      raftcache(['get', 'bin:none']),
      raftcache(['get']),
    ]);
    expect(help).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^usage: raftcache <command>/),
    });
    expect(found).toMatchObject({ code: 0, stdout: 'from a process\n' });
    expect(missing).toMatchObject({ code: 1, stdout: '', stderr: '(not found)\n' });
    expect(usage).toMatchObject({ code: 2, stderr: expect.stringMatching(/takes <key>/) });
  });
});

// The client commands' tests use keys of their own: they run at once.
describe.concurrent('raftcache: client commands against three node processes', () => {
  it('--help on every command, and an overview', async () => {
    const commands = ['get', 'set', 'del', 'mget', 'mset', 'expire', 'ttl', 'stats', 'cluster'];
    const runs = await Promise.all([
      cli(['--help']),
      ...[...commands, 'start', 'dev'].map((c) => cli([c, '--help'])),
    ]);
    expect(runs.map((r) => r.code)).toEqual(runs.map(() => 0));
    for (const command of commands) expect(runs[0].stdout).toContain(`  ${command} `);
    runs.slice(1).forEach((run, i) => {
      const command = [...commands, 'start', 'dev'][i];
      expect(run.stdout).toMatch(new RegExp(`^usage: raftcache ${command}`));
    });
    expect(runs[1 + commands.indexOf('set')].stdout).toMatch(/--ttl <value>\s+time to live, ms/);
    expect(runs[1 + commands.length].stdout).toMatch(/--initial-nodes <list>/);
    expect(runs[0].stdout).toMatch(/exit codes: 0 done, 1 not found/);
  });

  it('set, get, ttl, expire, del: human output, --json, and exit 1 for what is not there', async () => {
    expect(await cli(['set', 'cli:k', 'hello world', '--ttl', '600000'])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^OK \(version \d+\)\n$/),
    });
    expect(await cli(['get', 'cli:k'])).toMatchObject({ code: 0, stdout: 'hello world\n' });
    const json = await cli(['get', 'cli:k', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      key: 'cli:k',
      found: true,
      value: 'hello world',
      version: expect.any(Number),
      expiresAtMs: expect.any(Number),
    });
    const ttl = await cli(['ttl', 'cli:k']);
    expect(ttl.code).toBe(0);
    expect(Number(ttl.stdout.match(/^(\d+) ms\n$/)?.[1])).toBeGreaterThan(500_000);
    expect(await cli(['expire', 'cli:k', '--persist'])).toMatchObject({ code: 0 });
    expect(await cli(['ttl', 'cli:k'])).toMatchObject({ code: 0, stdout: 'no expiry\n' });
    expect(await cli(['expire', 'cli:k', '120000'])).toMatchObject({ code: 0 });
    expect(await cli(['del', 'cli:k', 'cli:absent'])).toMatchObject({
      code: 0,
      stdout: '1 of 2 keys removed\n',
    });

    const missing = await Promise.all([
      cli(['get', 'cli:k']),
      cli(['get', 'cli:k', '--json']),
      cli(['ttl', 'cli:k', '--json']),
      cli(['del', 'cli:k']),
      cli(['expire', 'cli:k', '1000']),
    ]);
    expect(missing.map((r) => r.code)).toEqual([1, 1, 1, 1, 1]);
    expect(missing[0]).toMatchObject({ stdout: '', stderr: '(not found)\n' });
    expect(JSON.parse(missing[1].stdout)).toEqual({ key: 'cli:k', found: false });
    expect(JSON.parse(missing[2].stdout)).toEqual({ key: 'cli:k', found: false });
  });

  it('conditions: set --nx on a present key exits 1; --if-version swaps', async () => {
    const first = JSON.parse((await cli(['set', 'cli:nx', 'a', '--nx', '--json'])).stdout);
    expect(first).toMatchObject({ applied: true });
    expect(await cli(['set', 'cli:nx', 'b', '--nx'])).toMatchObject({
      code: 1,
      stdout: 'not applied: the condition did not hold\n',
    });
    expect(await cli(['set', 'cli:nx', 'c', '--if-version', String(first.version)])).toMatchObject({
      code: 0,
    });
    expect(await cli(['get', 'cli:nx'])).toMatchObject({ stdout: 'c\n' });
  });

  it('mset and mget over shards; a value from standard input', async () => {
    const mset = await cli(['mset', 'cli:a', '1', 'cli:b', '2', '{t}x', '3', '{t}y', '4']);
    expect(mset).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^OK \(4 keys on \d shards?\)\n$/),
    });
    const mget = await cli(['mget', 'cli:a', 'cli:b', '{t}y', 'cli:none']);
    expect(mget).toMatchObject({
      code: 1,
      stdout: 'cli:a: 1\ncli:b: 2\n{t}y: 4\ncli:none: (not found)\n',
    });
    const json = await cli(['mget', 'cli:a', '{t}x', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      { key: 'cli:a', found: true, value: '1' },
      { key: '{t}x', found: true, value: '3' },
    ]);
    expect(await cli(['set', 'cli:stdin', '-'], { stdin: 'piped\nvalue' })).toMatchObject({
      code: 0,
    });
    expect(await cli(['get', 'cli:stdin'])).toMatchObject({ stdout: 'piped\nvalue\n' });
  });

  it('stats and cluster, as tables and as JSON', async () => {
    const [stats, statsJson, map, mapJson] = await Promise.all([
      cli(['stats']),
      cli(['stats', '--json']),
      cli(['cluster', '--seeds', cluster.addresses[1]]),
      cli(['cluster', '--json']),
    ]);
    expect([stats.code, statsJson.code, map.code, mapJson.code]).toEqual([0, 0, 0, 0]);
    expect(stats.stdout.split('\n')[0]).toMatch(
      /^node\s+shard\s+keys\s+bytes\s+capacity.*\s+role\s+eviction\s+state$/,
    );
    expect(stats.stdout).toMatch(/\s(leader|follower)\s+lru\s+running\n/);
    expect(stats.stdout.split('\n').filter((l) => /^n[123]\s/.test(l))).toHaveLength(12);
    const nodes = JSON.parse(statsJson.stdout);
    expect(nodes.map((n: { nodeId: string }) => n.nodeId)).toEqual(['n1', 'n2', 'n3']);
    expect(map.stdout).toMatch(/^cluster rc-[0-9a-f]+, epoch 1, 16384 slots/);
    for (const address of cluster.addresses) expect(map.stdout).toContain(address);
    expect(map.stdout).toMatch(/\n\s*1\s+0-4095\s+n[123]\s+n\d,n\d,n\d\n/);
    expect(JSON.parse(mapJson.stdout).shards).toHaveLength(4);
  });

  it('errors exit 2: bad usage, a refused request, no cluster', async () => {
    const [missingArg, unknownFlag, badTtl, noCommand, tooLong, tooLongJson, nowhere] =
      await Promise.all([
        cli(['set', 'only-key']),
        cli(['get', 'k', '--bogus']),
        cli(['set', 'k', 'v', '--ttl', 'soon']),
        cli(['frobnicate']),
        cli(['set', 'k'.repeat(2000), 'v']),
        cli(['set', 'k'.repeat(2000), 'v', '--json']),
        cli(['get', 'k', '--timeout', '300'], { seeds: `127.0.0.1:${await freePort()}` }),
      ]);
    expect(missingArg).toMatchObject({ code: 2, stdout: '' });
    expect(missingArg.stderr).toMatch(
      /takes <key> <value> \(got "only-key"\)\nsee raftcache set --help/,
    );
    expect(unknownFlag).toMatchObject({ code: 2, stderr: expect.stringMatching(/'--bogus'/) });
    expect(badTtl).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--ttl must be a whole number/),
    });
    expect(noCommand).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/no command "frobnicate"/),
    });
    expect(tooLong).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/INVALID_ARGUMENT: key is 2000 bytes; the limit is 1024/),
    });
    expect(tooLongJson.code).toBe(2);
    expect(JSON.parse(tooLongJson.stdout)).toEqual({
      error: { code: 'INVALID_ARGUMENT', message: expect.stringMatching(/limit is 1024/) },
    });
    expect(nowhere).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(
        /CLUSTER_UNREACHABLE: no node answered[\s\S]*is a cluster running/,
      ),
    });
  });
});

/** The first of `count` consecutive free loopback ports. */
async function freePorts(count: number): Promise<number> {
  for (;;) {
    const first = await freePort();
    const free = await Promise.all(
      Array.from({ length: count - 1 }, (_, i) => canListen(first + 1 + i)),
    );
    if (free.every(Boolean)) return first;
  }
}

describe('raftcache start and dev', () => {
  it('a write that could not be sent exits 2, saying it did not apply', async () => {
    const client = new CacheClient({ seeds: cluster.addresses });
    const map = await client.clusterMap();
    await client.close();
    const key = 'cli:limbo';
    const slot = keySlot(key);
    const shard = map.shards.find((s) => s.slots.some((r) => r.first <= slot && slot <= r.last));
    const leader = cluster.node(map.nodes.find((n) => n.id === shard?.leader)?.address as string);
    await cluster.signal(leader, 'SIGSTOP');
    try {
      // Each CLI run is a new client: its first write opens a session on the shard's
      // leader, which cannot answer, so the write itself is never sent.
      const run = await cli(['set', key, 'v', '--timeout', '500']);
      expect(run).toMatchObject({
        code: 2,
        stderr: expect.stringMatching(
          /UNAVAILABLE: a write to shard \d+ was not sent, so it did not apply/,
        ),
      });
    } finally {
      await cluster.signal(leader, 'SIGCONT');
    }
  });

  it('start runs one node with the flags of src/server/main.ts, which client commands then use; SIGTERM stops it', async () => {
    const bad = await raftcache(['start', '--node-id', 'x', '--shards', '0']);
    expect(bad).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/shards 0: from 1 to 16384/),
    });
    const address = `127.0.0.1:${await freePort()}`;
    const node = spawn(
      process.execPath,
      [bin, 'start', '--node-id', 'solo', '--listen', address, '--bootstrap', '--shards', '2'],
      { env: { ...process.env, RAFTCACHE_LOG_LEVEL: 'warn' } },
    );
    const exited = finished(node);
    try {
      const client = new CacheClient({ seeds: [address] });
      await client.set('cli:solo', 'one node', { deadlineMs: 30_000 });
      await client.close();
      expect(await cli(['get', 'cli:solo'], { seeds: address })).toMatchObject({
        code: 0,
        stdout: 'one node\n',
      });
    } finally {
      node.kill('SIGTERM');
    }
    expect((await exited).code).toBe(0);
  }, 60_000);

  it('dev runs the local cluster of three nodes; SIGINT stops them all', async () => {
    cluster.stop(); // the file's cluster is done with: three processes fewer on two cores
    const base = await freePorts(3);
    const dev = spawn(process.execPath, [bin, 'dev', '--base-port', String(base)]);
    const exited = finished(dev);
    const first = `127.0.0.1:${base}`;
    try {
      const client = new CacheClient({ seeds: [first] });
      await client.set('cli:dev', 'three nodes', { deadlineMs: 30_000 });
      await client.close();
      const map = await cli(['cluster', '--json'], { seeds: first });
      expect(JSON.parse(map.stdout).nodes.map((n: { address: string }) => n.address)).toEqual([
        first,
        `127.0.0.1:${base + 1}`,
        `127.0.0.1:${base + 2}`,
      ]);
    } finally {
      dev.kill('SIGINT');
    }
    const run = await exited;
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`listening on ${first}`);
  }, 60_000);
});
