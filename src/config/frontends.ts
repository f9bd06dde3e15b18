import type { Env, ProblemSink } from './read.js';
import type { BffConfig, FrontendConfig } from './types.js';
import { frontendKey, VARIABLES, type VariableName } from './variables.js';

/**
 * One entry of the MS_BFF_CONFIG file's `frontends` list, checked for its own shape; its settings
 * are still text for the variables they stand for, so the one loader (load.ts) parses and checks
 * them exactly as it does the environment.
 */
export interface FrontendEntry {
  readonly index: number;
  readonly name: string;
  /** Lower-case host name without port; undefined: any host. */
  readonly host: string | undefined;
  /** `/` or `/segment/…/` (always with a trailing slash). */
  readonly pathPrefix: string;
  /** Variable name → text, from the entry's camelCase keys (and its `flags`). */
  readonly env: Readonly<Record<string, string>>;
  /** The entry's `routes` object; undefined: the environment's (or the file's top-level) routes. */
  readonly routes: unknown;
  /** Variable name → where the entry set it (`MS_BFF_CONFIG.frontends[1].cookieName`), for problems. */
  readonly paths: ReadonlyMap<string, string>;
}

/** Where problems of the file's frontends are reported. */
export const FRONTENDS_PATH = 'MS_BFF_CONFIG.frontends';

const NAME = /^[a-z0-9-]{1,63}$/;
/** RFC 1123 host names (and IPv4 literals), without a port. */
const HOST = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** Path segments of RFC 3986 unreserved characters. */
const PATH_PREFIX = /^\/([A-Za-z0-9._~-]+\/)*$/;

/** `flags` keys and the variables they set (the CONTRACT's short names). */
const FLAGS: Readonly<Record<string, VariableName>> = {
  dpop: 'MS_BFF_DPOP_ENABLED',
  jar: 'MS_BFF_JAR_ENABLED',
  jarm: 'MS_BFF_JARM_ENABLED',
  jarmMode: 'MS_BFF_JARM_MODE',
  par: 'MS_BFF_PAR_ENABLED',
};

/** camelCase key → variable, for every variable a frontend may set (`frontend: true`). */
const KEYS: ReadonlyMap<string, { name: VariableName; fileVariant: boolean }> = new Map(
  (Object.entries(VARIABLES) as [VariableName, { frontend?: boolean; source: string }][])
    .filter(([, spec]) => spec.frontend === true)
    .flatMap(([name, spec]) => {
      const key = frontendKey(name);
      const entries: [string, { name: VariableName; fileVariant: boolean }][] = [
        [key, { name, fileVariant: false }],
      ];
      if (spec.source !== 'value') entries.push([`${key}File`, { name, fileVariant: true }]);
      return entries;
    }),
);

/** Keys an entry has beside its variables. */
const OWN_KEYS = new Set(['name', 'host', 'pathPrefix', 'routes', 'flags']);

/**
 * Check the `frontends` list: every problem is reported with its path, none stops the others.
 * Returns every object entry, also one with problems, so the loader checks its settings too.
 */
export function parseFrontends(raw: unknown, problem: ProblemSink): FrontendEntry[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    problem(FRONTENDS_PATH, 'must be a non-empty list of frontends');
    return [];
  }
  const entries: FrontendEntry[] = [];
  raw.forEach((item: unknown, index) => {
    const at = `${FRONTENDS_PATH}[${index}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      problem(at, 'must be an object (name, host and/or pathPrefix, publicUrl, clientId, …)');
      return;
    }
    entries.push(parseEntry(item as Record<string, unknown>, index, at, problem));
  });
  crossChecks(entries, problem);
  return entries;
}

function parseEntry(
  item: Record<string, unknown>,
  index: number,
  at: string,
  problem: ProblemSink,
): FrontendEntry {
  const env: Record<string, string> = {};
  const paths = new Map<string, string>();
  const fail = problem;

  const name = item.name;
  if (typeof name !== 'string' || !NAME.test(name)) fail(`${at}.name`, 'is required: [a-z0-9-]+ (unique)');

  let host: string | undefined;
  if (item.host !== undefined) {
    if (typeof item.host !== 'string' || !HOST.test(item.host.toLowerCase())) {
      fail(`${at}.host`, 'must be a host name without scheme, port or path');
    } else host = item.host.toLowerCase();
  }
  let pathPrefix = '/';
  if (item.pathPrefix !== undefined) {
    const prefix = typeof item.pathPrefix === 'string' ? item.pathPrefix : '';
    const normalised = prefix.endsWith('/') ? prefix : `${prefix}/`;
    if (!PATH_PREFIX.test(normalised)) {
      fail(`${at}.pathPrefix`, 'must be a path such as /banking/ (unreserved characters, starting with /)');
    } else pathPrefix = normalised;
  }

  for (const [key, value] of Object.entries(item)) {
    if (OWN_KEYS.has(key)) continue;
    const known = KEYS.get(key);
    if (!known) {
      fail(`${at}.${key}`, 'is not a frontend setting');
      continue;
    }
    const variable = known.fileVariant ? `${known.name}_FILE` : known.name;
    // A JSON-valued setting may be written as the object itself (YAML `spaHeaders: { … }`).
    const text =
      JSON_SETTINGS.has(known.name) && isPlainObject(value) ? JSON.stringify(value) : settingText(value);
    if (text === undefined) fail(`${at}.${key}`, 'must be a string, number, boolean or list of strings');
    else {
      env[variable] = text;
      paths.set(variable, `${at}.${key}`);
      paths.set(known.name, `${at}.${key}`);
    }
  }

  if (item.flags !== undefined) {
    if (typeof item.flags !== 'object' || item.flags === null || Array.isArray(item.flags)) {
      fail(`${at}.flags`, 'must be an object: { dpop, jar, jarm, jarmMode, par }');
    } else {
      for (const [flag, value] of Object.entries(item.flags as Record<string, unknown>)) {
        const variable = FLAGS[flag];
        const where = `${at}.flags.${flag}`;
        if (!variable) {
          fail(where, `is not a flag (${Object.keys(FLAGS).join(', ')})`);
          continue;
        }
        if (paths.has(variable)) {
          fail(where, `is also set as ${paths.get(variable)}; set it once`);
          continue;
        }
        const text = settingText(value);
        if (text === undefined || Array.isArray(value)) fail(where, 'must be a boolean (jarmMode: a mode)');
        else {
          env[variable] = text;
          paths.set(variable, where);
        }
      }
    }
  }

  let routes: unknown;
  if (item.routes !== undefined) {
    if (typeof item.routes !== 'object' || item.routes === null || Array.isArray(item.routes)) {
      fail(`${at}.routes`, 'must be an object of route name → URL or { url, token, … }');
    } else {
      routes = item.routes;
      paths.set('MS_BFF_ROUTES', `${at}.routes`);
    }
  }

  // A pathPrefix frontend's cookie cannot be __Host- (that needs Path=/): its default says so.
  if (
    pathPrefix !== '/' &&
    env.MS_BFF_COOKIE_NAME === undefined &&
    typeof name === 'string' &&
    NAME.test(name)
  ) {
    env.MS_BFF_COOKIE_NAME = `__Secure-bff-${name}`;
  }
  return {
    index,
    name: typeof name === 'string' && NAME.test(name) ? name : `#${index}`,
    host,
    pathPrefix,
    env,
    routes,
    paths,
  };
}

/** Names unique; no two frontends selecting the same requests or sharing a cookie on one host. */
function crossChecks(entries: readonly FrontendEntry[], problem: ProblemSink): void {
  const byName = new Map<string, number>();
  const bySelector = new Map<string, number>();
  const byCookie = new Map<string, number>();
  for (const e of entries) {
    const at = `${FRONTENDS_PATH}[${e.index}]`;
    if (e.name.startsWith('#')) continue;
    const sameName = byName.get(e.name);
    if (sameName !== undefined) problem(`${at}.name`, `is also the name of frontends[${sameName}]`);
    else byName.set(e.name, e.index);
    const selector = `${e.host ?? '*'} ${e.pathPrefix}`;
    const sameSelector = bySelector.get(selector);
    if (sameSelector !== undefined) {
      problem(at, `selects the same requests (host and pathPrefix) as frontends[${sameSelector}]`);
    } else bySelector.set(selector, e.index);
    // One browser sends both cookies to both frontends when they share a host (or match any host).
    const cookie = `${e.host ?? '*'} ${e.env.MS_BFF_COOKIE_NAME ?? '(environment)'}`;
    const sameCookie = byCookie.get(cookie);
    if (sameCookie !== undefined) {
      problem(`${at}.cookieName`, `is also the cookie of frontends[${sameCookie}] on the same host`);
    } else byCookie.set(cookie, e.index);
  }
}

/** A setting's text as the environment would carry it (lists comma-separated). */
/** Settings whose text is a JSON object. */
const JSON_SETTINGS: ReadonlySet<string> = new Set(['MS_BFF_SPA_HEADERS']);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function settingText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join(',');
  return undefined;
}

/**
 * The problem sink of one frontend's load: a variable the entry set is reported at the entry's
 * path (`MS_BFF_ROUTES.x` → `…frontends[1].routes.x`); a frontend variable neither the entry nor
 * the environment set is reported at the entry too (it is the entry's to give); anything else is
 * the environment's and keeps its name.
 */
export function frontendProblemSink(entry: FrontendEntry, baseEnv: Env, problem: ProblemSink): ProblemSink {
  return (variable, message) => {
    const dot = variable.indexOf('.');
    const head = dot < 0 ? variable : variable.slice(0, dot);
    const rest = dot < 0 ? '' : variable.slice(dot);
    const path = entry.paths.get(head);
    if (path !== undefined) return problem(`${path}${rest}`, message);
    const bare = head.replace(/_FILE$/, '') as VariableName;
    const spec = VARIABLES[bare] as { frontend?: boolean } | undefined;
    const inEnv = [baseEnv[bare], baseEnv[`${bare}_FILE`]].some((v) => v !== undefined && v.trim() !== '');
    if (spec?.frontend === true && !inEnv) {
      return problem(`${FRONTENDS_PATH}[${entry.index}].${frontendKey(bare)}${rest}`, message);
    }
    problem(variable, message);
  };
}

/**
 * The frontend a command or an embedding acts on: the one named, or the only one. Several and no
 * name (or a name none has) is a problem, with every frontend's name: guessing would act on the
 * wrong client.
 */
export function frontendNamed(
  config: BffConfig,
  name: string | undefined,
): FrontendConfig | { readonly problem: string; readonly names: string } {
  const names = config.frontends.map((f) => f.name);
  const wanted = name ?? (names.length === 1 ? names[0] : undefined);
  const found = config.frontends.find((f) => f.name === wanted);
  if (found) return found;
  return {
    problem: name === undefined ? 'several frontends' : `no frontend named ${name}`,
    names: names.join(', '),
  };
}
