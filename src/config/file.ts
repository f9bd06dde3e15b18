import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Env, ProblemSink } from './read.js';
import { VARIABLE_NAMES } from './variables.js';

export interface MergedConfigFile {
  readonly env: Env;
  readonly fileRoutes: unknown;
  /** The file's `frontends` list, unparsed (frontends.ts checks it); undefined when absent. */
  readonly fileFrontends: unknown;
}

/**
 * MS_BFF_CONFIG: a JSON or YAML file whose keys are variable names, plus `routes` and `frontends`
 * (a list whose entries use the camelCase keys of variables.ts's `frontend: true` variables, see
 * `frontendKey`, parsed by frontends.ts). The environment wins over the file's top level.
 */
export function mergeConfigFile(env: Env, problem: ProblemSink): MergedConfigFile {
  const none = { env, fileRoutes: undefined, fileFrontends: undefined };
  const path = env.MS_BFF_CONFIG?.trim();
  if (!path) return none;
  let doc: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    doc = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    problem('MS_BFF_CONFIG', `cannot read ${path}: ${(err as Error).message}`);
    return none;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    problem('MS_BFF_CONFIG', 'must hold an object of variable names (and routes, frontends)');
    return none;
  }
  const merged: Record<string, string | undefined> = {};
  let fileRoutes: unknown;
  let fileFrontends: unknown;
  for (const [key, value] of Object.entries(doc)) {
    if (key === 'routes') {
      fileRoutes = value;
      continue;
    }
    if (key === 'frontends') {
      fileFrontends = value;
      continue;
    }
    if (!VARIABLE_NAMES.has(key) && !VARIABLE_NAMES.has(key.replace(/_FILE$/, ''))) {
      problem(`MS_BFF_CONFIG.${key}`, 'is not a known variable');
      continue;
    }
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      merged[key] = String(value);
    } else {
      problem(`MS_BFF_CONFIG.${key}`, 'must be a string, number or boolean');
    }
  }
  return { env: { ...merged, ...env }, fileRoutes, fileFrontends };
}
