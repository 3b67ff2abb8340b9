import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** Where the public API's contract lives, for servers here and clients anywhere. */
export const PROTO_PATH = path.join(import.meta.dirname, '..', '..', 'proto', 'raftcache.proto');

/**
 * How the server and the SDK decode the public API: field names as in the `.proto`, 64-bit
 * integers as strings (parsed and range-checked where used), enums by name, defaults filled.
 */
export const PROTO_LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/**
 * The Cache service's per-key operations: the `oneof` field that names each on the Pipeline
 * stream, and its unary method.
 */
export const CACHE_OPERATIONS = {
  get: 'Get',
  set: 'Set',
  del: 'Del',
  mget: 'MGet',
  mset: 'MSet',
  expire: 'Expire',
  ttl: 'Ttl',
  open_session: 'OpenSession',
} as const;

export type PipelinedOperation = keyof typeof CACHE_OPERATIONS;
export type CacheMethod = (typeof CACHE_OPERATIONS)[PipelinedOperation];

interface RaftcachePackage {
  readonly raftcache: {
    readonly v1: {
      readonly Cache: grpc.ServiceClientConstructor;
      readonly Admin: grpc.ServiceClientConstructor;
    };
  };
}

/** The `.proto` as proto-loader reads it: every message and service, by full name. */
export const publicPackage = loadSync(PROTO_PATH, PROTO_LOADER_OPTIONS);

/** The public services, loaded once. */
export const publicApi = (grpc.loadPackageDefinition(publicPackage) as unknown as RaftcachePackage)
  .raftcache.v1;
