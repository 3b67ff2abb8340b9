// The `raftcache` command's entry (bin/raftcache.js runs it): the process's streams and
// environment, and its exit code.
import { runCli } from './cli.ts';

const code = await runCli(process.argv.slice(2), {
  out: (text) => console.log(text),
  err: (text) => console.error(text),
  env: process.env,
  stdin: process.stdin,
});
if (code !== undefined) process.exitCode = code;
