import { SERVICE_TOKEN_CHECKS, TOKEN_POLICIES } from '../enums.js';
import { parseUrl } from '../kinds.js';
import type { RouteConfig } from '../types.js';
import { isForbiddenResponseHeader } from '../response-headers.js';
import type { RuleContext } from './context.js';
import type { PlainHttpPolicy } from './tls.js';

/**
 * The API route table: from MS_BFF_ROUTES (JSON) or the config file's `routes`. Each route becomes
 * `/api/<name>/…`; its upstream URL follows the same TLS policy as the IdP's.
 */
export function routeTable(
  ctx: RuleContext,
  fromFile: unknown,
  http: PlainHttpPolicy,
): ReadonlyMap<string, RouteConfig> {
  const raw = ctx.values.MS_BFF_ROUTES;
  const defaultTimeoutMs = ctx.values.MS_BFF_UPSTREAM_TIMEOUT_MS;
  const problem = ctx.problem;
  const routes = new Map<string, RouteConfig>();
  let table: unknown = fromFile ?? {};
  if (raw !== undefined) {
    try {
      table = JSON.parse(raw);
    } catch {
      problem('MS_BFF_ROUTES', 'is not valid JSON');
      return routes;
    }
  }
  if (typeof table !== 'object' || table === null || Array.isArray(table)) {
    problem('MS_BFF_ROUTES', 'must be a JSON object of name → URL or { url, token, timeoutMs }');
    return routes;
  }
  for (const [name, value] of Object.entries(table)) {
    const where = `MS_BFF_ROUTES.${name}`;
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/i.test(name)) {
      problem(where, 'route names are letters, digits, - and _ (they become /api/<name>/)');
      continue;
    }
    const spec = typeof value === 'string' ? { url: value } : value;
    if (typeof spec !== 'object' || spec === null) {
      problem(where, 'must be a URL string or an object with url');
      continue;
    }
    const s = spec as {
      url?: unknown;
      token?: unknown;
      timeoutMs?: unknown;
      serviceAudience?: unknown;
      mtls?: unknown;
      serviceTokens?: unknown;
      responseHeaders?: unknown;
      cache?: unknown;
      resource?: unknown;
      clientScope?: unknown;
      websocket?: unknown;
      closeOnTokenExpiry?: unknown;
      enabled?: unknown;
    };
    if (s.enabled !== undefined && typeof s.enabled !== 'boolean')
      problem(where, 'enabled must be true or false');
    const responseHeaders = responseHeaderList(where, s.responseHeaders, problem);
    if (s.cache !== undefined && s.cache !== 'no-store' && s.cache !== 'private')
      problem(where, 'cache must be "no-store" or "private"');
    if (s.mtls !== undefined && typeof s.mtls !== 'boolean') problem(where, 'mtls must be true or false');
    if (s.websocket !== undefined && typeof s.websocket !== 'boolean') {
      problem(where, 'websocket must be true or false');
    }
    if (s.closeOnTokenExpiry !== undefined && typeof s.closeOnTokenExpiry !== 'boolean') {
      problem(where, 'closeOnTokenExpiry must be true or false');
    }
    if (s.closeOnTokenExpiry === true && s.websocket !== true) {
      problem(where, 'closeOnTokenExpiry applies only to websocket routes');
    }
    const serviceTokens = s.serviceTokens ?? 'jwt';
    if (!SERVICE_TOKEN_CHECKS.includes(serviceTokens as never)) {
      problem(where, `serviceTokens must be ${SERVICE_TOKEN_CHECKS.map((t) => `"${t}"`).join(' or ')}`);
    }
    let target: URL | undefined;
    if (typeof s.url !== 'string' || s.url.trim() === '') problem(where, 'is required');
    else {
      target = parseUrl(s.url, (message) => problem(where, message));
      if (target) http.check(where, target);
    }
    const token = s.token ?? 'user';
    if (!TOKEN_POLICIES.includes(token as never))
      problem(where, `token must be ${TOKEN_POLICIES.map((t) => `"${t}"`).join(' or ')}`);
    const timeoutMs = s.timeoutMs ?? defaultTimeoutMs;
    if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 100) {
      problem(where, 'timeoutMs must be an integer ≥ 100');
    }
    const serviceAudience = s.serviceAudience;
    if (
      serviceAudience !== undefined &&
      (typeof serviceAudience !== 'string' || serviceAudience.length === 0)
    ) {
      problem(
        where,
        "serviceAudience must be a non-empty string (the audience of service callers' access tokens)",
      );
    }
    // RFC 8707 §2: an absolute URI without a fragment.
    let resource: string | undefined;
    if (s.resource !== undefined) {
      const parsed =
        typeof s.resource === 'string'
          ? parseUrl(s.resource, (message) => problem(`${where}.resource`, message))
          : undefined;
      if (typeof s.resource !== 'string') problem(`${where}.resource`, 'must be an absolute URI');
      else if (parsed?.hash) problem(`${where}.resource`, 'must not have a fragment (RFC 8707 §2)');
      else if (parsed) resource = s.resource;
    }
    if (s.clientScope !== undefined && (typeof s.clientScope !== 'string' || !s.clientScope.trim())) {
      problem(where, 'clientScope must be a non-empty, space-separated scope string');
    }
    if (s.clientScope !== undefined && (token === 'user' || token === 'none' || token === 'user-or-none')) {
      problem(where, `clientScope applies only to "client" and "user-or-client" routes`);
    }
    if (target && (target.search || target.hash))
      problem(where, 'the upstream URL must not have a query or fragment');
    if (target) {
      routes.set(name, {
        name,
        url: target,
        token: TOKEN_POLICIES.find((t) => t === token) ?? 'user',
        resource,
        clientScope: typeof s.clientScope === 'string' ? s.clientScope.trim() : undefined,
        timeoutMs: typeof timeoutMs === 'number' ? timeoutMs : defaultTimeoutMs,
        serviceAudience: typeof serviceAudience === 'string' && serviceAudience ? serviceAudience : undefined,
        mtls: s.mtls === true,
        websocket: s.websocket === true,
        closeOnTokenExpiry: s.closeOnTokenExpiry === true,
        enabled: s.enabled !== false,
        serviceTokens: serviceTokens === 'introspection' ? 'introspection' : 'jwt',
        responseHeaders,
        cache: s.cache === 'private' ? 'private' : 'no-store',
      });
    }
  }
  return routes;
}

/** RFC 9110 §5.1 field names. */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A route's extra response headers: field names, none of those that act on our origin. */
function responseHeaderList(
  where: string,
  value: unknown,
  problem: (variable: string, message: string) => void,
): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || !FIELD_NAME.test(v))) {
    problem(where, 'responseHeaders must be an array of header names');
    return [];
  }
  const names = (value as string[]).map((v) => v.toLowerCase());
  const forbidden = names.filter(isForbiddenResponseHeader);
  if (forbidden.length > 0)
    problem(where, `responseHeaders cannot pass ${forbidden.join(', ')} (they act on the BFF's origin)`);
  return names.filter((n) => !isForbiddenResponseHeader(n));
}
