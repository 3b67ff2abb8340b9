// The public API on a node's gRPC server: the Cache and Admin services, each request checked
// against its method's size limit and protobuf's wire format before it is decoded.
import type * as grpc from '@grpc/grpc-js';
import { publicApi } from '../protocol/proto.ts';
import { strictService } from '../protocol/strict-decoding.ts';
import { type AdminServiceContext, adminServiceHandlers } from './admin-service.ts';
import { type CacheServiceContext, cacheServiceHandlers } from './cache-service.ts';
import { ADMIN_REQUEST_LIMITS, CACHE_REQUEST_LIMITS } from './grpc-limits.ts';

export function addPublicServices(
  server: grpc.Server,
  cache: CacheServiceContext,
  admin: AdminServiceContext,
): void {
  server.addService(
    strictService(publicApi.Cache.service, CACHE_REQUEST_LIMITS),
    cacheServiceHandlers(cache),
  );
  server.addService(
    strictService(publicApi.Admin.service, ADMIN_REQUEST_LIMITS),
    adminServiceHandlers(admin),
  );
}
