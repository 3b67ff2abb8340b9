// `raftcache get --stale` and `--max-staleness ms` against a replica cut off from its leader
// (three nodes in this process over real gRPC, two of them stopped).
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../../src/cli/cli.ts';
import { GrpcCluster } from '../support/grpc-cluster.ts';

let cluster: GrpcCluster;
let seeds: string;

beforeAll(async () => {
  cluster = await GrpcCluster.start({ dataShards: 1 });
  const set = await cluster.callLeader('Set', { key: 'cli-cut', value: Buffer.from('old') });
  seeds = cluster.address(await cluster.cutOffFollower('cli-cut', Number(set.version), 400));
});

afterAll(async () => {
  await cluster.close();
});

async function cli(
  args: string[],
): Promise<{ code: number | undefined; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, {
    out: (text) => out.push(text),
    err: (text) => err.push(text),
    env: { RAFTCACHE_SEEDS: seeds },
    stdin: Readable.from([]),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

it('--stale reads the cut-off replica; --max-staleness refuses it when it is staler, exit 2', async () => {
  expect(await cli(['get', 'cli-cut', '--stale'])).toMatchObject({ code: 0, out: 'old' });
  expect(await cli(['get', 'cli-cut', '--max-staleness', '600000'])).toMatchObject({
    code: 0,
    out: 'old',
  });
  const refused = await cli(['get', 'cli-cut', '--max-staleness', '200', '--timeout', '1000']);
  expect(refused.code).toBe(2);
  expect(refused.err).toMatch(/more than the 200 ms the read allows|unavailable/i);
  expect((await cli(['mget', 'cli-cut', '--max-staleness', '200', '--timeout', '1000'])).code).toBe(
    2,
  );
  expect(await cli(['get', 'cli-cut', '--max-staleness', 'soon'])).toMatchObject({
    code: 2,
    err: expect.stringMatching(/--max-staleness must be a whole number/),
  });
});
