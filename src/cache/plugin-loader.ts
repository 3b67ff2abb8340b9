// Loads an eviction plugin by the name or module path in a node's config, so a third-party
// policy runs without a change to `src`.
//
// A plugin module exports `createPolicy(options?)`, returning a fresh `EvictionPolicy`: the
// host calls it once per shard, since a policy instance serves exactly one store. A name in
// the `builtIns` registry the caller gives (the composition root's, src/server/
// eviction-plugins.ts: this room imports nothing from `plugins/`) loads that module;
// anything else is a module path (absolute, `file:` URL, or relative to `baseDir`) or a
// package name. Every policy a factory makes is checked for the interface's methods before
// the store ever sees it, and the store attaches it to a read-only view of its entries,
// nothing more, through its guard (policy-guard.ts).
//
//   const createPolicy = await loadPolicyFactory(spec, { baseDir, builtIns: BUILT_IN_PLUGINS });
//   const store = new CacheStore({ capacityBytes, policy: createPolicy(options) });
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidPluginError, PluginNotFoundError } from './errors.ts';
import type { EvictionPolicy } from './eviction-policy.ts';

/** Makes one policy, for one store; `options` is the plugin's own config section. */
export type PolicyFactory = (options?: unknown) => EvictionPolicy;

/** What a plugin module is expected to export. */
export interface PluginModule {
  createPolicy?: unknown;
}

/** Plugins known by name: each loads its module. */
export type PolicyRegistry = Readonly<Record<string, () => Promise<PluginModule>>>;

const METHODS = ['attach', 'onInsert', 'onUpdate', 'onAccess', 'onRemove', 'victims', 'rebuild'];

export interface LoadPluginOptions {
  /** Where relative module paths start from: the config file's folder. `process.cwd()` by default. */
  baseDir?: string | undefined;
  /** Names that load a module of their own (the built-ins); none by default. */
  builtIns?: PolicyRegistry | undefined;
}

/**
 * Resolves `spec` to a policy factory. Throws `PluginNotFoundError` when there is no such
 * module and `InvalidPluginError` when the module does not export a usable `createPolicy`.
 */
export async function loadPolicyFactory(
  spec: string,
  options: LoadPluginOptions = {},
): Promise<PolicyFactory> {
  const builtIns = options.builtIns ?? {};
  const builtIn = Object.hasOwn(builtIns, spec) ? builtIns[spec] : undefined;
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
