import { Writable } from 'node:stream';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { watchLoopDelay } from '../../src/server/loop-delay-watch.ts';
import { until } from '../support/until.ts';

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
  // The point of this wait: two watch intervals of an idle loop, which must log nothing.
  await new Promise((resolve) => setTimeout(resolve, 120));
  expect(lines).toEqual([]);
  const stallEnds = Date.now() + 300;
  while (Date.now() < stallEnds) {
    // a stall the loop cannot escape, as a long GC pause or a busy request would cause
  }
  await until(() => (lines.length > 0 ? true : undefined));
  stop();
  expect(lines[0]).toMatchObject({
    msg: 'event loop delay threatens elections',
    electionTimeoutMs: 400,
  });
  expect(lines[0].maxDelayMs).toBeGreaterThanOrEqual(200);
});
