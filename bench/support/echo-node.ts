/**
 * The floor under the cluster benchmark: one process serving the public `Pipeline` with the
 * real `.proto`, grpc-js and the node's reply writer, answering every request at once with
 * no Raft, no peers and no store (a SET applied at version 1, a GET found with a 1 KB value).
 * What one gRPC hop into a process and back costs on this machine, measured with the same
 * client as the cluster. `node bench/support/echo-node.ts <host:port>`; stops on SIGTERM.
 */
import * as grpc from '@grpc/grpc-js';
import { publicApi } from '../../src/protocol/proto.ts';
import { ReplyWriter } from '../../src/server/reply-writer.ts';
import { GRPC_SERVER_OPTIONS, SharedPort } from '../../src/transport/shared-port.ts';

const VALUE = Buffer.alloc(1024, 7);
const applied = { outcome: 'APPLIED', version: 1 };
const found = { found: true, entry: { value: VALUE, version: 1 } };

// biome-ignore lint/suspicious/noExplicitAny: requests as proto-loader decodes them
type Wire = any;

const server = new grpc.Server(GRPC_SERVER_OPTIONS);
server.addService(publicApi.Cache.service, {
  Pipeline: (call: grpc.ServerDuplexStream<Wire, unknown>) => {
    const replies = new ReplyWriter(call);
    let inFlight = 0;
    let ended = false;
    call.on('data', (request: Wire) => {
      inFlight++;
      // Answered a promise later, as the node answers once its host settles a request.
      void Promise.resolve().then(() => {
        replies.write(
          request.request === 'set'
            ? { tag: request.tag, set: applied }
            : { tag: request.tag, get: found },
        );
        if (--inFlight === 0 && ended) call.end();
      });
    });
    call.on('end', () => {
      ended = true;
      if (inFlight === 0) call.end();
    });
    call.on('error', () => {});
  },
});
await SharedPort.listen(process.argv[2] ?? '127.0.0.1:7610', { grpc: server });
process.on('SIGTERM', () => {
  server.forceShutdown();
  process.exit(0);
});
