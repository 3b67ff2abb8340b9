/**
 * One raftcache node: `node src/server/main.ts --node-id n1 --bootstrap --initial-nodes
 * n1=127.0.0.1:7401,n2=127.0.0.1:7402,n3=127.0.0.1:7403 --listen 127.0.0.1:7401` (see
 * config.ts for every setting), or `raftcache start` with the same flags. Logs go to stdout
 * as JSON (pino), at `RAFTCACHE_LOG_LEVEL` (default `info`). SIGTERM or SIGINT: leadership is
 * handed away first, then the node stops.
 */
import { pino } from 'pino';
import { InvalidPluginError, PluginNotFoundError } from '../cache/errors.ts';
import { ConfigError, loadConfig } from './config.ts';
import { startNode } from './node.ts';

/** Starts a node from flags and the environment, and stops it on SIGTERM or SIGINT. */
export async function runNode(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<void> {
  const logger = pino({ level: env.RAFTCACHE_LOG_LEVEL ?? 'info' });
  try {
    const node = await startNode(loadConfig(argv, env), logger);
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      await node.close();
      process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  } catch (error) {
    if (
      error instanceof ConfigError ||
      error instanceof PluginNotFoundError ||
      error instanceof InvalidPluginError
    ) {
      console.error(error.message);
      process.exit(2);
    }
    logger.fatal({ err: error }, 'node failed to start');
    process.exit(1);
  }
}

if (import.meta.main) await runNode(process.argv.slice(2));
