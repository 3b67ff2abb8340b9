// Errors of the wire itself: a request that is not valid protobuf for its message, or larger
// than its method takes. Neither is decoded, nor applied.

/** Every code a protocol error may carry (mapped to a gRPC status in ./status.ts). */
export type ProtocolErrorCode = 'MALFORMED_REQUEST' | 'REQUEST_TOO_LARGE';

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The request's bytes are not a valid encoding of its message. */
export class MalformedRequestError extends ProtocolError {
  constructor(problem: string) {
    super('MALFORMED_REQUEST', `the request is not valid protobuf: ${problem}`);
  }
}

/** The request is larger than its method could ever need (README, "Limits"). */
export class RequestTooLargeError extends ProtocolError {
  constructor(method: string, bytes: number, limit: number) {
    super(
      'REQUEST_TOO_LARGE',
      `a ${method} request of ${bytes} bytes; the limit is ${limit} bytes`,
    );
  }
}
