// The package as a user gets it: packed (which builds it), unpacked under a node_modules where
// Node strips no types, then imported by name and run as a command. Its dependencies resolve
// from the repository's own node_modules, so nothing is fetched.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = path.join(import.meta.dirname, '..');
const scratch = mkdtempSync(path.join(repo, 'node_modules', '.package-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

it('packs into a package that imports by name and runs its command from its build', async () => {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', scratch], {
    cwd: repo,
  });
  const [{ filename, files }] = JSON.parse(stdout) as {
    filename: string;
    files: { path: string }[];
  }[];
  const paths = files.map((f) => f.path);
  expect(paths).toContain('dist/src/client/index.js');
  expect(paths).toContain('dist/src/client/index.d.ts');
  expect(paths).toContain('dist/proto/raftcache.proto');
  expect(paths.filter((p) => p.endsWith('.ts') && !p.endsWith('.d.ts'))).toEqual([]);

  const installed = path.join(scratch, 'node_modules', 'raftcache');
  mkdirSync(installed, { recursive: true });
  await run('tar', ['-xzf', path.join(scratch, filename), '-C', installed, '--strip-components=1']);

  // An application next to that node_modules: the SDK by name, its public API there.
  const app = path.join(scratch, 'app.mjs');
  writeFileSync(
    app,
    `import { CacheClient, OutcomeUnknownError } from 'raftcache';
const client = new CacheClient({ seeds: ['127.0.0.1:1'], deadlineMs: 300 });
const error = await client.get('k').catch((e) => e);
await client.close();
console.log(JSON.stringify({ client: typeof CacheClient, unknown: typeof OutcomeUnknownError, code: error.code }));`,
  );
  const imported = JSON.parse((await run(process.execPath, [app], { cwd: scratch })).stdout);
  expect(imported).toEqual({
    client: 'function',
    unknown: 'function',
    code: 'CLUSTER_UNREACHABLE',
  });

  const bin = path.join(installed, 'bin', 'raftcache.js');
  const help = await run(process.execPath, [bin, '--help'], { cwd: scratch });
  expect(help.stdout).toMatch(/usage: raftcache <command>/);
}, 60_000);
