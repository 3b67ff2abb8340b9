// One real node in the test's process, founding a cluster of its own on loopback: the same
// gRPC server, options and services as `npm run node`, for tests of the public boundary.
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { publicApi } from '../../src/protocol/proto.ts';
import { loadConfig } from '../../src/server/config.ts';
import { type RunningNode, startNode } from '../../src/server/node.ts';
import { freePort } from './node-processes.ts';
import { until } from './until.ts';

export interface TestNode {
  readonly address: string;
  readonly node: RunningNode;
}

/**
 * Starts a one-node cluster (every shard a group of one replica, so this node leads them
 * all) and resolves once every shard has elected it.
 */
export async function startTestNode(flags: readonly string[] = []): Promise<TestNode> {
  const address = `127.0.0.1:${await freePort()}`;
  const config = loadConfig(
    [
      ...['--node-id', 'n1', '--listen', address, '--bootstrap'],
      ...['--shards', '2', '--replication-factor', '1', ...flags],
    ],
    {},
  );
  const node = await startNode(config, pino({ level: 'silent' }));
  // biome-ignore lint/suspicious/noExplicitAny: a generated client
  const admin: any = new publicApi.Admin(address, grpc.credentials.createInsecure());
  let led = false;
  const ask = () =>
    admin.ClusterMap({}, (error: Error | null, map: { shards: { leader: string }[] }) => {
      led = !error && map.shards.every((shard) => shard.leader === 'n1');
      if (!led) setTimeout(ask, 20);
    });
  ask();
  await until(() => (led ? true : undefined), 10_000).finally(() => admin.close());
  return { address, node };
}
