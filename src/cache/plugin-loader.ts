// Loads an eviction plugin by the name or module path in a node's config, so a third-party
// policy runs without a change to `src`.
//
// A plugin module exports `createPolicy(options?)`, returning a fresh `EvictionPolicy`: the
// host calls it once per shard, since a policy instance serves exactly one store. Built-in
// names (`lru`, `lfu`, `ttl`) map to the modules under `plugins/`; anything else is a module
// path (absolute, `file:` URL, or relative to `baseDir`) or a package name. Every policy a
// factory makes is checked for the interface's methods before the store ever sees it, and
// the store attaches it to a read-only view of its entries, nothing more.
//
//   const createPolicy = await loadPolicyFactory(config.eviction.plugin, { baseDir });
//   const store = new CacheStore({ capacityBytes, policy: createPolicy(config.eviction.options) });
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidPluginError, PluginNotFoundError } from './errors.ts';
import type { EvictionPolicy } from './eviction-policy.ts';

/** Makes one policy, for one store; `options` is the plugin's own config section. */
export type PolicyFactory = (options?: unknown) => EvictionPolicy;

interface PluginModule {
  createPolicy?: unknown;
}

/** Literal imports, so that a build rewrites them to the emitted `.js` files. */
const BUILT_IN: Record<string, () => Promise<PluginModule>> = {
  lru: () => import('../../plugins/lru/index.ts'),
  lfu: () => import('../../plugins/lfu/index.ts'),
  ttl: () => import('../../plugins/ttl/index.ts'),
};

export const BUILT_IN_POLICIES: readonly string[] = Object.keys(BUILT_IN);

const METHODS = ['attach', 'onInsert', 'onUpdate', 'onAccess', 'onRemove', 'victims', 'rebuild'];

export interface LoadPluginOptions {
  /** Where relative module paths start from: the config file's folder. `process.cwd()` by default. */
  baseDir?: string;
}

/**
 * Resolves `spec` to a policy factory. Throws `PluginNotFoundError` when there is no such
 * module and `InvalidPluginError` when the module does not export a usable `createPolicy`.
 */
export async function loadPolicyFactory(
  spec: string,
  options: LoadPluginOptions = {},
): Promise<PolicyFactory> {
  const builtIn = Object.hasOwn(BUILT_IN, spec) ? BUILT_IN[spec] : undefined;
  const specifier = builtIn ? spec : moduleSpecifier(spec, options.baseDir ?? process.cwd());
  if (specifier.startsWith('file:') && !existsSync(fileURLToPath(specifier)))
    throw new PluginNotFoundError(spec, fileURLToPath(specifier));
  let module: PluginModule;
  try {
    module = builtIn ? await builtIn() : ((await import(specifier)) as PluginModule);
  } catch (error) {
    if (isMissingPackage(error, specifier)) throw new PluginNotFoundError(spec, specifier);
    throw new InvalidPluginError(spec, `failed to load: ${(error as Error).message}`);
  }
  const create = module.createPolicy;
  if (typeof create !== 'function')
    throw new InvalidPluginError(spec, 'does not export a function createPolicy(options)');
  return (pluginOptions) => checkedPolicy(spec, create(pluginOptions));
}

function checkedPolicy(spec: string, policy: unknown): EvictionPolicy {
  if (policy === null || typeof policy !== 'object')
    throw new InvalidPluginError(spec, 'createPolicy did not return an object');
  const candidate = policy as Record<string, unknown>;
  if (typeof candidate.name !== 'string' || candidate.name === '')
    throw new InvalidPluginError(spec, 'made a policy without a name');
  const missing = METHODS.filter((method) => typeof candidate[method] !== 'function');
  if (missing.length > 0)
    throw new InvalidPluginError(spec, `made a policy without ${missing.join(', ')}`);
  return policy as EvictionPolicy;
}

function moduleSpecifier(spec: string, baseDir: string): string {
  if (spec.startsWith('file:')) return spec;
  if (isAbsolute(spec)) return pathToFileURL(spec).href;
  if (spec.startsWith('./') || spec.startsWith('../'))
    return pathToFileURL(resolve(baseDir, spec)).href;
  return spec;
}

/** Only the package itself missing counts; a missing import inside it is a broken plugin. */
function isMissingPackage(error: unknown, specifier: string): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return code === 'ERR_MODULE_NOT_FOUND' && message?.includes(`'${specifier}'`) === true;
}
