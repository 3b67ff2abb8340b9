// The public services as a server serves them: every request's bytes are checked against its
// method's size limit and the strict wire check (wire-check.ts) before protobufjs decodes
// them. A request that fails is not refused by grpc-js (which would answer INTERNAL and, on
// a Pipeline stream, end the whole stream): the handler receives a `RejectedRequest` instead
// of the message, and answers INVALID_ARGUMENT for that request alone.
import type * as grpc from '@grpc/grpc-js';
import { MalformedRequestError, type ProtocolError, RequestTooLargeError } from './errors.ts';
import { publicPackage } from './proto.ts';
import { readVarintField, type WireSchema, wireProblem, wireSchemas } from './wire-check.ts';

const SCHEMAS = wireSchemas(publicPackage);

/** What a handler receives for a request that was not decoded. */
export class RejectedRequest {
  readonly error: ProtocolError;
  /** A Pipeline request's `tag` when it could be read, as a decimal string; else '0'. */
  readonly tag: string;

  constructor(error: ProtocolError, tag: string) {
    this.error = error;
    this.tag = tag;
  }
}

/**
 * `service` with each method's request deserializer made strict; `maxBytes[method]` bounds
 * the request of a method (none for a method not named).
 */
export function strictService(
  service: grpc.ServiceDefinition,
  maxBytes: Readonly<Record<string, number>> = {},
): grpc.ServiceDefinition {
  return Object.fromEntries(
    Object.entries(service).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: strictDeserializer(
          name,
          schemaOf(method),
          maxBytes[name] ?? Number.POSITIVE_INFINITY,
          method.requestDeserialize,
        ),
      },
    ]),
  );
}

function schemaOf(method: grpc.MethodDefinition<unknown, unknown>): WireSchema {
  // The path is `/package.Service/Method`; messages share the service's package.
  const pkg = method.path.slice(1, method.path.lastIndexOf('.'));
  const described = method as { readonly requestType?: { readonly type?: { name?: string } } };
  const schema = SCHEMAS.get(`${pkg}.${described.requestType?.type?.name}`);
  if (schema === undefined) throw new Error(`no wire schema for the request of ${method.path}`);
  return schema;
}

function strictDeserializer(
  name: string,
  schema: WireSchema,
  maxBytes: number,
  decode: grpc.deserialize<unknown>,
): grpc.deserialize<unknown> {
  return (bytes) => {
    if (bytes.length > maxBytes)
      return new RejectedRequest(new RequestTooLargeError(name, bytes.length, maxBytes), '0');
    const problem = wireProblem(bytes, schema);
    if (problem !== undefined)
      return new RejectedRequest(
        new MalformedRequestError(problem),
        readVarintField(bytes, 1) ?? '0',
      );
    try {
      return decode(bytes);
    } catch (error) {
      // Not expected after the check; still the request's fault, never the stream's end.
      return new RejectedRequest(new MalformedRequestError(String((error as Error).message)), '0');
    }
  };
}
