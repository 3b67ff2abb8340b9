import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { InvalidPluginError, PluginNotFoundError } from '../../src/cache/errors.ts';
import type { EntryTableView, EvictionPolicy } from '../../src/cache/eviction-policy.ts';
import { loadPolicyFactory } from '../../src/cache/plugin-loader.ts';
import { CacheStore } from '../../src/cache/store.ts';
import {
  BUILT_IN_PLUGIN_NAMES,
  BUILT_IN_PLUGINS,
  evictionPolicyFactory,
} from '../../src/server/eviction-plugins.ts';

const plugins = path.join(import.meta.dirname, '..', 'plugins');

describe('plugin loader', () => {
  it.each(BUILT_IN_PLUGIN_NAMES)(
    'loads the built-in %s by name from the registry it is given, a fresh policy per call',
    async (name: string) => {
      const create = await loadPolicyFactory(name, { builtIns: BUILT_IN_PLUGINS });
      const first = create();
      expect(first.name).toBe(name);
      expect(create()).not.toBe(first);
      expect(new CacheStore({ capacityBytes: 1000, policy: first }).stats().policy).toBe(name);
    },
  );

  it('passes the plugin its options', async () => {
    const create = await loadPolicyFactory('lfu', { builtIns: BUILT_IN_PLUGINS });
    expect((create({ span: 5 }) as EvictionPolicy & { span: number }).span).toBe(5);
  });

  it('loads a module by relative path, absolute path and file URL', async () => {
    const absolute = path.join(plugins, 'third-party', 'fifo-policy.ts');
    for (const spec of ['./third-party/fifo-policy.ts', absolute, pathToFileURL(absolute).href]) {
      const create = await loadPolicyFactory(spec, { baseDir: plugins });
      expect(create().name).toBe('fifo');
    }
  });

  it("knows no built-in names of its own: the registry is the caller's", async () => {
    await expect(loadPolicyFactory('lru')).rejects.toThrow(PluginNotFoundError);
  });

  it('says when there is no such plugin', async () => {
    await expect(loadPolicyFactory('./nowhere.ts', { baseDir: plugins })).rejects.toThrow(
      PluginNotFoundError,
    );
    await expect(loadPolicyFactory('no-such-plugin-package')).rejects.toMatchObject({
      code: 'PLUGIN_NOT_FOUND',
    });
  });

  it('says when a module is not a valid plugin', async () => {
    const load = (file: string) => loadPolicyFactory(`./broken/${file}`, { baseDir: plugins });
    await expect(load('no-factory.ts')).rejects.toThrow(/does not export a function createPolicy/);
    await expect(load('missing-dependency.ts')).rejects.toThrow(InvalidPluginError);
    const create = await load('incomplete-policy.ts');
    expect(() => create()).toThrow(/without onUpdate, onAccess, onRemove, victims, rebuild/);
  });

  it('at the composition root, refuses at load a plugin that cannot make a valid policy', async () => {
    const logger = pino({ level: 'silent' });
    const load = (file: string, pluginOptions?: object) =>
      evictionPolicyFactory(`./broken/${file}`, {
        baseDir: plugins,
        logger,
        clock: () => 0,
        pluginOptions,
      });
    await expect(load('incomplete-policy.ts')).rejects.toThrow(/without onUpdate/);
    await expect(
      load('throwing-policy.ts', { hook: 'createPolicy', after: 0 }),
    ).rejects.toMatchObject({
      code: 'INVALID_PLUGIN',
      message: expect.stringMatching(/createPolicy threw: createPolicy: no more policies/),
    });
  });

  it('gives the policy a read-only view of the entries, nothing more', () => {
    const seen: { view?: EntryTableView } = {};
    const policy: EvictionPolicy = {
      name: 'spy',
      attach: (view) => {
        seen.view = view;
      },
      onInsert() {},
      onUpdate() {},
      onAccess() {},
      onRemove() {},
      victims: () => [],
      rebuild() {},
    };
    new CacheStore({ capacityBytes: 1000, policy });
    expect(Object.isFrozen(seen.view)).toBe(true);
    expect('insert' in (seen.view as object)).toBe(false);
    expect('remove' in (seen.view as object)).toBe(false);
  });
});
