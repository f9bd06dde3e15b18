import type { IncomingMessage } from 'node:http';
import type { BffConfig, FrontendConfig } from '../config/types.js';
import type { BffServices, RequestFrontend } from './services.js';

/** One served frontend: its configuration and the services built for it. */
export interface FrontendRuntime extends RequestFrontend {
  readonly frontend: FrontendConfig;
  /** Equal fingerprints: same settings, so a reload keeps these services (and their caches). */
  readonly fingerprint: string;
}

/** Paths a request must match a frontend for; everything else (health, metrics) is process-wide. */
const FRONTEND_PATHS = /^\/(auth|api)(\/|$|\?)/;

/**
 * The frontends being served, swapped as a whole by a reload (one assignment: a request sees the
 * old set or the new one, never a mix). Selection follows the CONTRACT: Host without its port, then
 * the longest matching pathPrefix; a frontend with a host wins over one without.
 */
export class FrontendRegistry {
  private current: readonly FrontendRuntime[];

  constructor(initial: readonly FrontendRuntime[]) {
    if (initial.length === 0) throw new Error('at least one frontend');
    this.current = initial;
  }

  /** The first frontend: process-wide handlers (health, metrics) use its services. */
  get primary(): FrontendRuntime {
    return this.current[0] as FrontendRuntime;
  }

  list(): readonly FrontendRuntime[] {
    return this.current;
  }

  replace(next: readonly FrontendRuntime[]): void {
    if (next.length === 0) throw new Error('at least one frontend');
    this.current = next;
  }

  /** The frontend of a request and the URL it has inside that frontend (its pathPrefix removed). */
  select(hostHeader: string | undefined, url: string): { runtime: FrontendRuntime; url: string } | undefined {
    const host = hostName(hostHeader);
    let best: FrontendRuntime | undefined;
    for (const runtime of this.current) {
      const f = runtime.frontend;
      if (f.host !== undefined && f.host !== host) continue;
      if (!url.startsWith(f.pathPrefix)) continue;
      if (
        !best ||
        (f.host !== undefined && best.frontend.host === undefined) ||
        ((f.host === undefined) === (best.frontend.host === undefined) &&
          f.pathPrefix.length > best.frontend.pathPrefix.length)
      ) {
        best = runtime;
      }
    }
    if (!best) return undefined;
    return { runtime: best, url: `/${url.slice(best.frontend.pathPrefix.length)}` };
  }

  /**
   * Fastify's `rewriteUrl` (runs before routing, synchronously): remember the request's frontend and
   * route it without its pathPrefix, so every frontend shares one set of routes.
   */
  rewrite(raw: IncomingMessage, attach: (raw: object, frontend: RequestFrontend) => void): string {
    const url = raw.url ?? '/';
    const selected = this.select(raw.headers.host, url);
    if (!selected) return url;
    attach(raw, selected.runtime);
    return selected.url;
  }
}

/** Whether a path (inside a frontend) needs one: `/auth/**` and `/api/**`. */
export function needsFrontend(url: string): boolean {
  return FRONTEND_PATHS.test(url);
}

/** The Host header's name: lower case, without port; IPv6 literals keep their brackets. */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1) || undefined;
  const colon = h.indexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/** '' for `/`, else the prefix without its trailing slash. */
export function basePath(pathPrefix: string): string {
  return pathPrefix === '/' ? '' : pathPrefix.slice(0, -1);
}

/**
 * A frontend's settings as a comparable string: what changed between two loads of the file. Key
 * material is compared by its public part (CryptoKey objects have no JSON form).
 */
export function frontendFingerprint(frontend: FrontendConfig): string {
  return JSON.stringify(
    { ...frontend, config: { ...frontend.config, warnings: undefined } },
    (_key, value: unknown) => {
      if (value instanceof Map) return Object.fromEntries(value);
      if (value instanceof Uint8Array) return Buffer.from(value).toString('base64url');
      return value;
    },
  );
}

/**
 * Settings that the running process cannot change (listener, store, issuer, workers, FIPS, trusted
 * proxies, admin listener): a reload that changes one is refused with their names.
 */
export function restartOnlyChanges(before: BffConfig, after: BffConfig): string[] {
  const facets: Record<string, (c: BffConfig) => unknown> = {
    OIDC_ISSUER: (c) => c.oidc.issuer.href,
    'HOST/PORT': (c) => [c.host, c.port],
    'store (REDIS_*)': (c) => [c.redisUrl, c.redisKeyPrefix, c.redis],
    MS_BFF_WORKERS: (c) => c.workers,
    FIPS_MODE: (c) => c.fipsMode,
    MS_BFF_PROFILE: (c) => c.profile,
    MS_BFF_TRUSTED_PROXIES: (c) => c.trustedProxies,
    'MS_BFF_ADMIN_HOST/PORT': (c) => c.observability.admin,
    MS_BFF_SESSION_KEYS: (c) => c.session.keys.map((k) => Buffer.from(k).toString('base64url')),
    // Set up once with the listener (logger, access-log hook, rate-limit hooks).
    'LOG_LEVEL/MS_BFF_LOG_FORMAT/MS_BFF_ACCESS_LOG': (c) => [
      c.logLevel,
      c.observability.logFormat,
      c.observability.accessLog,
    ],
    'abuse limits (MS_BFF_*_PER_MINUTE, MS_BFF_PAR_BUDGET, …)': (c) => c.observability.limits,
  };
  return Object.entries(facets)
    .filter(([, read]) => JSON.stringify(read(before)) !== JSON.stringify(read(after)))
    .map(([name]) => name);
}

export type { BffServices };
