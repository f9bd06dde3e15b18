import { readFileSync, statSync } from 'node:fs';
import { keyDirectoryAsJwks } from '../keys/key-files.js';
import type { Variable } from './kinds.js';
import { VARIABLES, type Values, type VariableName } from './variables.js';

export type Env = Readonly<Record<string, string | undefined>>;
export type ProblemSink = (variable: string, message: string) => void;

/**
 * Read every declared variable from `env` into its typed value, defaults applied. A value that
 * does not parse is reported to `problem` (with its variable name) and replaced by its default, so
 * the rules after this still run and every problem is reported in one round.
 */
export function readVariables(env: Env, problem: ProblemSink): Values {
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(VARIABLES) as [VariableName, Variable<unknown, unknown>][]) {
    const raw = rawText(name, spec, get, problem);
    const parsed = raw === undefined ? undefined : spec.parse(raw, (message) => problem(name, message));
    values[name] = parsed ?? spec.default;
  }
  return values as Values;
}

/** Whether the operator set the variable (directly or through `<NAME>_FILE`). */
export function isSet(env: Env, name: VariableName): boolean {
  return [env[name], env[`${name}_FILE`]].some((v) => v !== undefined && v.trim() !== '');
}

function rawText(
  name: string,
  spec: Variable<unknown, unknown>,
  get: (name: string) => string | undefined,
  problem: ProblemSink,
): string | undefined {
  if (spec.source === 'value') return get(name);
  const direct = get(name);
  const file = get(`${name}_FILE`);
  if (spec.source === 'secret') {
    if (direct !== undefined && file !== undefined) {
      problem(name, `set either ${name} or ${name}_FILE, not both`);
      return undefined;
    }
    if (file === undefined) return direct;
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      problem(`${name}_FILE`, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return undefined;
    }
  }
  // Key material: a path (in NAME or NAME_FILE) or the material inline.
  const source = direct ?? file;
  if (source === undefined) return undefined;
  if (source.startsWith('{') || source.includes('-----BEGIN')) return source;
  try {
    // A directory of key files (a key set, `fapi-bff keys generate`): read as one JWKS.
    if (statSync(source).isDirectory()) return keyDirectoryAsJwks(source);
    return readFileSync(source, 'utf8');
  } catch (err) {
    problem(
      direct !== undefined ? name : `${name}_FILE`,
      `cannot read key file ${source} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
    return undefined;
  }
}
