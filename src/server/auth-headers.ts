import type { FastifyInstance } from 'fastify';

/**
 * The CSP of every /auth/** response that does not set a strict one of its own (the relay page sets one
 * with a per-response script nonce; error pages their own strict one): nothing may load, nothing
 * may frame it (CSP Level 3 §6.4.2 frame-ancestors), no form may post anywhere.
 */
export const AUTH_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * A page's own policy is kept when it is at least as strict as ours where it matters (our relay and
 * error pages add a script nonce or a style hash); anything else, e.g. a weaker policy an embedding
 * application's hook set on every response, is replaced: /auth/** pages carry codes and states.
 */
function isStrictCsp(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const directives = new Map(
    value
      .split(';')
      .map((d) => d.trim().toLowerCase().split(/\s+/))
      .map(([name, ...sources]) => [name ?? '', sources]),
  );
  const only = (name: string, expected: string) => directives.get(name)?.join(' ') === expected;
  return (
    only('default-src', "'none'") &&
    only('frame-ancestors', "'none'") &&
    only('base-uri', "'none'") &&
    ![...directives.values()].flat().some((s) => /^('unsafe-|\*|https?:|data:|blob:)/.test(s))
  );
}

/** RFC 6797: two years, subdomains included; only over the production profile's HTTPS public URL. */
export const HSTS = 'max-age=63072000; includeSubDomains';

/**
 * Security headers of every /auth/** response: strict CSP, `nosniff` (Fetch §3.5),
 * `Referrer-Policy: no-referrer` (an authorization response's code must never leak in a Referer),
 * `Cache-Control: no-store` (RFC 9111 §5.2.2.5: nothing of a login is cached) and, in production,
 * HSTS. Runs on errors, 404s and 429s too.
 */
export function registerAuthHeaders(app: FastifyInstance, options: { prefix: string; hsts: boolean }): void {
  // Callback style: it runs on every response (an async hook costs a promise and a microtask turn).
  app.addHook('onSend', (request, reply, _payload, done) => {
    if (!request.url.startsWith(options.prefix)) return done();
    if (!isStrictCsp(reply.getHeader('content-security-policy')))
      reply.header('content-security-policy', AUTH_CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cache-control', 'no-store');
    if (options.hsts) reply.header('strict-transport-security', HSTS);
    done();
  });
}
