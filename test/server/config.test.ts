import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/server/config.ts';

function problemsOf(argv: string[], env: Record<string, string> = {}): readonly string[] {
  try {
    loadConfig(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('node configuration', () => {
  it('has defaults that need only a node id and a way into a cluster', () => {
    const config = loadConfig(['--node-id', 'n1', '--bootstrap'], {});
    expect(config).toMatchObject({
      nodeId: 'n1',
      listen: '127.0.0.1:7401',
      advertise: '127.0.0.1:7401',
      shards: 16,
      replicationFactor: 3,
      eviction: 'lru',
      capacityBytes: 256 * 2 ** 20,
      tickMs: 25,
      electionTicks: 12,
    });
  });

  it('reads a JSON file, then the environment, then flags, each overriding the one before', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'raftcache-config-'));
    const file = path.join(dir, 'node.json');
    writeFileSync(
      file,
      JSON.stringify({
        nodeId: 'from-file',
        region: 'eu',
        shards: 8,
        seeds: ['10.0.0.1:7401'],
        capacityBytes: '1GiB',
      }),
    );
    const config = loadConfig(['--config', file, '--shards', '4'], {
      RAFTCACHE_REGION: 'us',
      RAFTCACHE_PEER_ADDRESSES: 'n2=127.0.0.1:9002, n3=127.0.0.1:9003',
    });
    expect(config).toMatchObject({
      nodeId: 'from-file',
      region: 'us',
      shards: 4,
      seeds: ['10.0.0.1:7401'],
      capacityBytes: 2 ** 30,
      peerAddresses: ['n2=127.0.0.1:9002', 'n3=127.0.0.1:9003'],
    });
  });

  it('names every problem at once, with the flag to fix it', () => {
    const problems = problemsOf([
      '--listen',
      'nowhere',
      '--advertise',
      '127.0.0.1:70000',
      '--peer-addresses',
      'n2=127.0.0.1:99999',
      '--shards',
      '0',
      '--heartbeat-ticks',
      '20',
      '--capacity-bytes',
      '12 parsecs',
      '--region',
      'eu west',
    ]);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/node-id is required/),
        expect.stringMatching(/listen "nowhere" is not host:port/),
        expect.stringMatching(/advertise "127.0.0.1:70000" is not a host:port/),
        expect.stringMatching(/peer address "n2=127.0.0.1:99999" is not id=host:port/),
        expect.stringMatching(/shards 0/),
        expect.stringMatching(/heartbeat-ticks/),
        expect.stringMatching(/capacityBytes .*12 parsecs/),
        expect.stringMatching(/region "eu west": 1 to 64 letters/),
        expect.stringMatching(/--bootstrap a new cluster, or give --seeds/),
      ]),
    );
  });

  it('listens on any free port only with an address to advertise', () => {
    const base = ['--node-id', 'n1', '--bootstrap', '--listen', '127.0.0.1:0'];
    expect(problemsOf(base)).toEqual([
      expect.stringMatching(/advertise "127.0.0.1:0" is not a host:port .* needs --advertise/),
    ]);
    expect(problemsOf([...base, '--advertise', '10.1.2.3:7401'])).toEqual([]);
    expect(problemsOf(['--node-id', 'n2', '--seeds', '127.0.0.1:0'])).toEqual([
      expect.stringMatching(/seed "127.0.0.1:0" is not host:port/),
    ]);
  });

  it('refuses unknown flags and settings', () => {
    expect(problemsOf(['--node-id', 'n1', '--bootstrap', '--shard', '3'])[0]).toMatch(/shard/);
    const dir = mkdtempSync(path.join(tmpdir(), 'raftcache-config-'));
    const file = path.join(dir, 'node.json');
    writeFileSync(file, JSON.stringify({ nodeId: 'n1', bootstrap: true, replication: 3 }));
    expect(problemsOf(['--config', file])).toEqual([
      expect.stringMatching(/unknown setting "replication"/),
    ]);
  });
});
