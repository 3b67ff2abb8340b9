import { expect, it } from 'vitest';
import { publicApi } from '../../src/protocol/proto.ts';

it('the public .proto loads, with the Cache and Admin services it documents', () => {
  const methods = (service: { service: object }) => Object.keys(service.service).sort();
  expect(methods(publicApi.Cache)).toEqual([
    'Del',
    'Expire',
    'Get',
    'MGet',
    'MSet',
    'OpenSession',
    'Pipeline',
    'Set',
    'Stats',
    'Ttl',
  ]);
  expect(methods(publicApi.Admin)).toEqual([
    'AddNode',
    'ClusterMap',
    'GetStats',
    'Rebalance',
    'RemoveNode',
  ]);
});
