// A TCP proxy on loopback that forwards a node's traffic unchanged and counts the HTTP/2
// frames clients send through it: what a test needs to see how many frames went on the wire.
import { connect, createServer, type Server, type Socket } from 'node:net';

/** The HTTP/2 connection preface a client sends before its first frame. */
const PREFACE_BYTES = 24;
const FRAME_HEADER_BYTES = 9;
const DATA = 0x0;
const HEADERS = 0x1;

export class FrameCountingProxy {
  readonly address: string;
  /** Frames from clients, by type: DATA carries gRPC messages, HEADERS opens a call. */
  dataFrames = 0;
  headersFrames = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(server: Server, address: string) {
    this.#server = server;
    this.address = address;
  }

  /** A proxy to `target` (`host:port`) on a free loopback port. */
  static start(target: string): Promise<FrameCountingProxy> {
    const [host, port] = target.split(':');
    const server = createServer();
    return new Promise((resolve) =>
      server.listen(0, '127.0.0.1', () => {
        const { port: own } = server.address() as { port: number };
        const proxy = new FrameCountingProxy(server, `127.0.0.1:${own}`);
        server.on('connection', (client) => proxy.#forward(client, host, Number(port)));
        resolve(proxy);
      }),
    );
  }

  reset(): void {
    this.dataFrames = 0;
    this.headersFrames = 0;
  }

  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #forward(client: Socket, host: string, port: number): void {
    const upstream = connect(port, host);
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        this.#sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    let pending = Buffer.alloc(0);
    let prefaceLeft = PREFACE_BYTES;
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      if (prefaceLeft > 0) {
        const skipped = Math.min(prefaceLeft, pending.length);
        pending = pending.subarray(skipped);
        prefaceLeft -= skipped;
      }
      while (pending.length >= FRAME_HEADER_BYTES) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < FRAME_HEADER_BYTES + length) break;
        if (pending[3] === DATA) this.dataFrames++;
        if (pending[3] === HEADERS) this.headersFrames++;
        pending = pending.subarray(FRAME_HEADER_BYTES + length);
      }
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
  }
}
