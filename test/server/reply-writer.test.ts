// The Pipeline's reply writer on a real grpc-js stream over loopback: a raw-bytes echo whose
// server answers in bursts, each in one turn, as the host answers the writes of an entry.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplyWriter } from '../../src/server/reply-writer.ts';

const identity = (bytes: Buffer) => bytes;
const ECHO: grpc.MethodDefinition<Buffer, Buffer> = {
  path: '/test.Echo/Pipe',
  requestStream: true,
  responseStream: true,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
};

interface ServerSide {
  /** `_writev` calls and the replies they carried. */
  batches: number[];
  /** The most 'drain' listeners the call had at once, and whether it ever paused reading. */
  mostDrainListeners: number;
  paused: boolean;
}

let server: grpc.Server | undefined;
let client: grpc.Client | undefined;
afterEach(() => {
  client?.close();
  server?.forceShutdown();
});

/** The echo server; it answers once `burst` requests have come (or the stream ends). */
async function start(maxBuffered: number, burst: number, replyBytes = 16): Promise<ServerSide> {
  const side: ServerSide = { batches: [], mostDrainListeners: 0, paused: false };
  server = new grpc.Server();
  server.addService(
    { pipe: ECHO },
    {
      pipe: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        const writer = new ReplyWriter(call, maxBuffered);
        // biome-ignore lint/suspicious/noExplicitAny: watching the stream's batched writes
        const stream = call as any;
        const writev = stream._writev;
        stream._writev = (chunks: unknown[], done: () => void) => {
          side.batches.push(chunks.length);
          writev(chunks, done);
        };
        let turn: Buffer[] = [];
        let ended = false;
        const answer = () => {
          setImmediate(() => {
            const requests = turn;
            turn = [];
            for (const tag of requests) {
              writer.write(Buffer.concat([tag, Buffer.alloc(replyBytes)]));
              side.mostDrainListeners = Math.max(
                side.mostDrainListeners,
                call.listenerCount('drain'),
              );
              side.paused ||= call.isPaused();
            }
            if (ended) call.end();
          });
        };
        call.on('data', (request: Buffer) => {
          turn.push(request);
          if (turn.length === burst) answer();
        });
        call.on('end', () => {
          ended = true;
          if (turn.length === 0) call.end();
          else answer();
        });
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server?.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) =>
      error ? reject(error) : resolve(p),
    ),
  );
  client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return side;
}

/** Sends `count` tags (4-byte numbers) and collects the tags of the replies. */
function exchange(count: number, readDelayMs = 0): Promise<number[]> {
  const stream = (client as grpc.Client).makeBidiStreamRequest<Buffer, Buffer>(
    ECHO.path,
    identity,
    identity,
  );
  const tags: number[] = [];
  const done = new Promise<number[]>((resolve, reject) => {
    stream.on('data', (reply: Buffer) => tags.push(reply.readUInt32BE(0)));
    stream.on('end', () => resolve(tags));
    stream.on('error', reject);
  });
  if (readDelayMs > 0) {
    // A client that reads nothing for a while: replies pile up behind HTTP/2 flow control.
    stream.pause();
    setTimeout(() => stream.resume(), readDelayMs);
  }
  for (let i = 0; i < count; i++) {
    const tag = Buffer.alloc(4);
    tag.writeUInt32BE(i);
    stream.write(tag);
  }
  stream.end();
  return done;
}

describe('ReplyWriter', () => {
  it('answers every tag once, the replies of a turn handed over together', async () => {
    const side = await start(1024, 100);
    const tags = await exchange(2_000);
    expect(tags.toSorted((a, b) => a - b)).toEqual(Array.from({ length: 2_000 }, (_, i) => i));
    const batched = side.batches.reduce((sum, n) => sum + n, 0);
    // Every reply went in a batch, one batch per burst at most.
    expect(batched).toBe(2_000);
    expect(side.batches.length).toBeLessThanOrEqual(20);
  });

  it('pauses reading while a slow reader leaves replies waiting, once, and resumes', async () => {
    const side = await start(8, 1, 4096);
    const tags = await exchange(500, 300);
    expect(new Set(tags).size).toBe(500);
    expect(side.paused).toBe(true);
    expect(side.mostDrainListeners).toBeLessThanOrEqual(2);
  });
});
