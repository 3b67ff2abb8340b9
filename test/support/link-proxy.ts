// A TCP proxy for one peer link, on loopback, that a test can stall: while stalled it reads
// nothing either way, as a partition does to TCP (no byte lost, none delivered; the senders'
// buffers fill), and connections made meanwhile stall too. Healed, everything flows again.
// `stallReplies` stalls only what the target sends back: requests arrive, answers do not.
import net from 'node:net';
import { parseAddress } from '../../src/transport/shared-port.ts';

export class LinkProxy {
  readonly #server: net.Server;
  readonly #target: { host: string; port: number };
  readonly #sockets = new Set<net.Socket>();
  /** The sockets to the target, whose bytes are the replies. */
  readonly #upstreams = new Set<net.Socket>();
  #stalled = false;
  #accepted = 0;
  #repliesStalled = false;

  private constructor(target: string) {
    this.#target = parseAddress(target);
    this.#server = net.createServer((client) => this.#relay(client));
  }

  /** A proxy on a free loopback port that forwards to `target` (`host:port`). */
  static async start(target: string): Promise<LinkProxy> {
    const proxy = new LinkProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** Connections accepted so far: a link that broke and was dialled again counts twice. */
  get accepted(): number {
    return this.#accepted;
  }

  get address(): string {
    return `127.0.0.1:${(this.#server.address() as net.AddressInfo).port}`;
  }

  stall(): void {
    this.#stalled = true;
    for (const socket of this.#sockets) socket.pause();
  }

  stallReplies(): void {
    this.#repliesStalled = true;
    for (const socket of this.#upstreams) socket.pause();
  }

  heal(): void {
    this.#stalled = false;
    this.#repliesStalled = false;
    for (const socket of this.#sockets) socket.resume();
  }

  close(): void {
    this.#server.close();
    for (const socket of this.#sockets) socket.destroy();
  }

  #relay(client: net.Socket): void {
    this.#accepted++;
    const upstream = net.connect(this.#target);
    this.#upstreams.add(upstream);
    upstream.once('close', () => this.#upstreams.delete(upstream));
    if (this.#repliesStalled) upstream.pause();
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ]) {
      this.#sockets.add(from);
      from.on('data', (bytes) => to.write(bytes));
      from.on('error', () => {});
      from.once('close', () => {
        this.#sockets.delete(from);
        to.destroy();
      });
      if (this.#stalled) from.pause();
    }
  }
}
