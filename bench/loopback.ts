/**
 * `npm run bench:loopback`: what one message between two processes costs on this machine, the
 * floor under every replicated operation (a write crosses processes four to six times). Two
 * Node processes bounce 100-byte messages over loopback TCP, back to back and with pauses
 * between round trips (so that both sides go idle and must be woken, as at low load): wall
 * time and CPU per round trip on each side. Prints a table and writes
 * bench/results/loopback.json.
 */
import { fork } from 'node:child_process';
import net from 'node:net';
import { printTable, writeResults } from './support/report.ts';

const ROUND_TRIPS = 2_000;
const PAUSES_MS = [0, 1, 5];

/** The echo side: answers every chunk, and reports its CPU time when asked. */
function serveEcho(): void {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (bytes) => socket.write(bytes));
  });
  server.listen(0, '127.0.0.1', () => process.send?.((server.address() as net.AddressInfo).port));
  process.on('message', () => {
    const { user, system } = process.cpuUsage();
    process.send?.(user + system);
  });
  process.on('disconnect', () => process.exit(0));
}

async function measure() {
  const echo = fork(import.meta.filename, ['echo']);
  const reply = () => new Promise<number>((resolve) => echo.once('message', resolve));
  const port = await reply();
  const echoCpu = () => {
    const answer = reply();
    echo.send('cpu');
    return answer;
  };
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once('connect', resolve));
  const message = Buffer.alloc(100, 1);
  const rows = [];
  for (const pauseMs of PAUSES_MS) {
    const echoBefore = await echoCpu();
    const mine = process.cpuUsage();
    let waitedMs = 0;
    const started = performance.now();
    for (let i = 0; i < ROUND_TRIPS; i++) {
      await new Promise((resolve) => {
        socket.once('data', resolve);
        socket.write(message);
      });
      if (pauseMs > 0) {
        const pausedAt = performance.now();
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
        waitedMs += performance.now() - pausedAt;
      }
    }
    const wallUs = ((performance.now() - started - waitedMs) * 1000) / ROUND_TRIPS;
    const { user, system } = process.cpuUsage(mine);
    const echoUs = ((await echoCpu()) - echoBefore) / ROUND_TRIPS;
    rows.push({
      'pause between': `${pauseMs} ms`,
      'round trip µs': Math.round(wallUs),
      'sender CPU µs': Math.round((user + system) / ROUND_TRIPS),
      'echo CPU µs': Math.round(echoUs),
    });
    console.log(`  pause ${pauseMs} ms done`);
  }
  socket.destroy();
  echo.disconnect();
  return rows;
}

if (process.argv[2] === 'echo') serveEcho();
else {
  console.log(`loopback bench: ${ROUND_TRIPS.toLocaleString('en-US')} round trips of 100 bytes`);
  const rows = await measure();
  printTable(rows);
  console.log(`written to ${writeResults('loopback', rows)}`);
}
