/**
 * `npm start` (or `raftcache dev`): a local cluster of three node processes on
 * 127.0.0.1:7401-7403, no configuration needed. Prints where it listens and an example;
 * Ctrl-C stops all three (each hands its leaderships away first). `RAFTCACHE_BASE_PORT`
 * moves the ports.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

/** Runs the three nodes, on `basePort` and the two ports after it, until SIGINT or SIGTERM. */
export function runDevCluster(basePort = Number(process.env.RAFTCACHE_BASE_PORT ?? 7401)): void {
  const nodes = [1, 2, 3].map((i) => ({ id: `n${i}`, address: `127.0.0.1:${basePort + i - 1}` }));
  const initial = nodes.map((n) => `${n.id}=${n.address}`).join(',');
  // main.ts in the repository, main.js in the built package.
  const main = path.join(import.meta.dirname, `main${path.extname(import.meta.filename)}`);

  const children: ChildProcess[] = nodes.map((n) =>
    spawn(
      process.execPath,
      [main, '--node-id', n.id, '--listen', n.address, '--bootstrap', '--initial-nodes', initial],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, RAFTCACHE_LOG_LEVEL: process.env.RAFTCACHE_LOG_LEVEL ?? 'warn' },
      },
    ),
  );

  const seeds = basePort === 7401 ? '' : ` --seeds ${nodes[0]?.address}`;
  console.log(
    `raftcache: a local 3-node cluster (3 processes), listening on ${nodes.map((n) => n.address).join(', ')}`,
  );
  console.log('try, from another terminal in the repository:');
  console.log(`  npx raftcache set hello world${seeds}`);
  console.log(`  npx raftcache get hello${seeds}`);
  console.log(`  npx raftcache cluster${seeds}`);
  console.log(
    `or any gRPC client with proto/raftcache.proto (a node that does not lead the key's shard answers FAILED_PRECONDITION with the leader in "raftcache-leader"). Ctrl-C stops the cluster`,
  );

  let exited = 0;
  for (const child of children) {
    child.on('exit', (code) => {
      exited++;
      if (code !== 0 && code !== null) console.error(`a node exited with code ${code}`);
      if (exited === children.length) process.exit(0);
    });
  }
  const stop = () => {
    for (const child of children) child.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (import.meta.main) runDevCluster();
