/**
 * The kinds of configuration variable: each knows how to parse its text and how it is documented.
 * A declaration in variables.ts is one call to one of these builders; reading the environment,
 * validating values, docs/configuration.md and the README table all derive from it.
 */

/** Reports a problem with the variable being parsed. */
export type Fail = (message: string) => void;

/** Where a variable's text comes from. */
export type Source =
  /** the variable itself */
  | 'value'
  /** the variable, or the contents of the file named by `<NAME>_FILE` (never both) */
  | 'secret'
  /** a path to a file, or inline material (PEM / JSON); `<NAME>_FILE` is also accepted as the path */
  | 'key';

export interface Variable<T, V = T | undefined> {
  /** Shown in the docs' "type" column. */
  readonly type: string;
  readonly doc: string;
  readonly source: Source;
  /** The value when unset; `undefined` when absent. */
  readonly default: T | undefined;
  /** A default that depends on other settings, computed by a rule (described, not typed). */
  readonly defaultDoc?: string;
  /** Accepted values, for enumerations and lists. */
  readonly values?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  /** Never logged, never in an error body; also read from `<NAME>_FILE`. */
  readonly secret: boolean;
  /**
   * May be set per frontend in the MS_BFF_CONFIG file (camelCase name without the
   * OIDC_/MS_BFF_/BFF_ prefix); otherwise it applies to the whole process.
   */
  readonly frontend: boolean;
  /**
   * The key of a `frontend` variable in a frontend of the config file when it is not the derived
   * one (`static` for MS_BFF_STATIC_DIR: a name fixed by the contract).
   */
  readonly frontendKey?: string;
  readonly parse: (raw: string, fail: Fail) => T | undefined;
  /** Phantom: the value type after defaults (T when a default exists, else T | undefined). */
  readonly __value?: V;
}

interface Common {
  readonly doc: string;
  readonly defaultDoc?: string;
  readonly frontend?: boolean;
  readonly frontendKey?: string;
}

const base = (o: Common) => ({
  doc: o.doc,
  ...(o.defaultDoc !== undefined ? { defaultDoc: o.defaultDoc } : {}),
  frontend: o.frontend ?? false,
  ...(o.frontendKey !== undefined ? { frontendKey: o.frontendKey } : {}),
});

type Out<T, D> = D extends undefined ? T | undefined : T;

/** Free text, optionally checked against a pattern. */
export function text<D extends string | undefined = undefined>(
  o: Common & {
    readonly default?: D;
    readonly secret?: boolean;
    readonly pattern?: { readonly re: RegExp; readonly message: string };
  },
): Variable<string, Out<string, D>> {
  return {
    ...base(o),
    type: 'string',
    source: o.secret ? 'secret' : 'value',
    default: o.default,
    secret: o.secret ?? false,
    parse: (raw, fail) => {
      if (o.pattern && !o.pattern.re.test(raw)) {
        fail(o.pattern.message);
        return undefined;
      }
      return raw;
    },
  };
}

export function int<D extends number | undefined = undefined>(
  o: Common & { readonly default?: D; readonly min: number; readonly max: number; readonly unit?: string },
): Variable<number, Out<number, D>> {
  return {
    ...base(o),
    type: o.unit ? `integer (${o.unit})` : 'integer',
    source: 'value',
    default: o.default,
    min: o.min,
    max: o.max,
    secret: false,
    parse: (raw, fail) => {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < o.min || n > o.max) {
        fail(`must be an integer from ${o.min} to ${o.max} (got "${raw}")`);
        return undefined;
      }
      return n;
    },
  };
}

export function bool(o: Common & { readonly default: boolean }): Variable<boolean, boolean> {
  return {
    ...base(o),
    type: 'boolean',
    source: 'value',
    default: o.default,
    values: ['true', 'false'],
    secret: false,
    parse: (raw, fail) => {
      const v = raw.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      fail(`must be true or false (got "${v}")`);
      return undefined;
    },
  };
}

export function oneOf<const A extends readonly string[], D extends A[number] | undefined = undefined>(
  values: A,
  o: Common & { readonly default?: D },
): Variable<A[number], Out<A[number], D>> {
  return {
    ...base(o),
    type: 'enum',
    source: 'value',
    default: o.default,
    values,
    secret: false,
    parse: (raw, fail) => {
      if ((values as readonly string[]).includes(raw)) return raw as A[number];
      fail(`must be one of ${values.join(', ')} (got "${raw}")`);
      return undefined;
    },
  };
}

/** Comma-separated, trimmed, empty items dropped; each item checked against `values` when given. */
export function list(
  o: Common & {
    readonly default: readonly string[];
    readonly values?: readonly string[];
    readonly lowercase?: boolean;
  },
): Variable<readonly string[], readonly string[]> {
  return {
    ...base(o),
    type: 'list',
    source: 'value',
    default: o.default,
    ...(o.values ? { values: o.values } : {}),
    secret: false,
    parse: (raw, fail) => {
      const items = raw
        .split(',')
        .map((s) => (o.lowercase ? s.trim().toLowerCase() : s.trim()))
        .filter(Boolean);
      let ok = true;
      for (const item of items) {
        if (o.values && !o.values.includes(item)) {
          fail(`alg ${item} is not allowed (${o.values.join(', ')})`);
          ok = false;
        }
      }
      return ok ? items : undefined;
    },
  };
}

/**
 * An absolute URL with one of `schemes` and no credentials. Whether plain http is acceptable
 * depends on the profile: that is the TLS rule's decision (rules/tls.ts), not the parser's.
 */
export function url(
  o: Common & { readonly schemes?: readonly string[]; readonly secret?: boolean },
): Variable<URL, URL | undefined> {
  const schemes = o.schemes ?? ['https:', 'http:'];
  return {
    ...base(o),
    type: 'URL',
    source: o.secret ? 'secret' : 'value',
    default: undefined,
    secret: o.secret ?? false,
    parse: (raw, fail) => parseUrl(raw, fail, schemes),
  };
}

export function parseUrl(raw: string, fail: Fail, schemes: readonly string[] = ['https:', 'http:']) {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    // A URL may carry a password (REDIS_URL): never echo the value back.
    fail(schemes.includes('https:') ? `is not a URL ("${raw}")` : 'is not a URL');
    return undefined;
  }
  if (!schemes.includes(parsed.protocol)) {
    fail(
      schemes.includes('https:')
        ? `must be an https URL (got ${parsed.protocol})`
        : `must be a ${schemes.map((s) => `${s}//`).join(' or ')} URL`,
    );
    return undefined;
  }
  if (schemes.includes('https:') && (parsed.username || parsed.password)) {
    fail('must not carry credentials');
  }
  return parsed;
}

/**
 * Key or certificate material: a path to a file, or the material inline (PEM or JSON), so secret
 * managers that inject values rather than files work too. With `pem`, the expected PEM block is
 * checked here, so a swapped certificate and key are caught at startup.
 */
export function key(
  o: Common & { readonly secret?: boolean; readonly pem?: 'CERTIFICATE' | 'PRIVATE KEY' },
): Variable<string, string | undefined> {
  return {
    ...base(o),
    type: o.pem ? 'PEM (path or inline)' : 'key (path or inline)',
    source: 'key',
    default: undefined,
    secret: o.secret ?? false,
    parse: (raw, fail) => {
      if (o.pem === undefined) return raw;
      const ok =
        o.pem === 'PRIVATE KEY'
          ? /-----BEGIN (EC |RSA )?PRIVATE KEY-----/.test(raw)
          : raw.includes('-----BEGIN CERTIFICATE-----');
      if (!ok) {
        fail(`must be PEM with a ${o.pem} block`);
        return undefined;
      }
      return raw;
    },
  };
}

/** A base64url secret of at least `minBytes` bytes, decoded. */
export function bytes(
  o: Common & { readonly minBytes: number; readonly secret: true },
): Variable<Uint8Array, Uint8Array | undefined> {
  return {
    ...base(o),
    type: `base64url (≥ ${o.minBytes} bytes)`,
    source: 'secret',
    default: undefined,
    secret: true,
    parse: (raw, fail) => {
      const decoded = Buffer.from(raw, 'base64url');
      if (!/^[A-Za-z0-9_-]+$/.test(raw) || decoded.length < o.minBytes) {
        fail(`must be base64url of at least ${o.minBytes} bytes`);
        return undefined;
      }
      return new Uint8Array(decoded);
    },
  };
}
