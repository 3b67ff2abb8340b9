import { Writable } from 'node:stream';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { watchLoopDelay } from '../../src/server/loop-delay-watch.ts';

it('warns, with the numbers, when the event loop stalls for half an election timeout', async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const stop = watchLoopDelay({
    logger: pino({ level: 'warn' }, sink),
    electionTimeoutMs: 400,
    intervalMs: 50,
  });
  await new Promise((resolve) => setTimeout(resolve, 120));
  expect(lines).toEqual([]); // an idle loop stays quiet
  const until = Date.now() + 300;
  while (Date.now() < until) {
    // a stall the loop cannot escape, as a long GC pause or a busy request would cause
  }
  await new Promise((resolve) => setTimeout(resolve, 150));
  stop();
  expect(lines.length).toBeGreaterThan(0);
  expect(lines[0]).toMatchObject({
    msg: 'event loop delay threatens elections',
    electionTimeoutMs: 400,
  });
  expect(lines[0].maxDelayMs).toBeGreaterThanOrEqual(200);
});
