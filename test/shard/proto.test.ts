import path from 'node:path';
import { loadSync } from '@grpc/proto-loader';
import { expect, it } from 'vitest';

it('the public .proto loads, with the Cache and Admin services it documents', () => {
  const definition = loadSync(path.join(import.meta.dirname, '../../proto/raftcache.proto'), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const methods = (service: string) =>
    Object.keys(definition[`raftcache.v1.${service}`] as object).sort();
  expect(methods('Cache')).toEqual([
    'Del',
    'Expire',
    'Get',
    'MGet',
    'MSet',
    'Pipeline',
    'Set',
    'Stats',
    'Ttl',
  ]);
  expect(methods('Admin')).toEqual([
    'AddNode',
    'ClusterMap',
    'GetStats',
    'Rebalance',
    'RemoveNode',
  ]);
});
