import type { FastifyInstance, FastifyRequest } from 'fastify';
import { endpointsPlugin } from '../endpoints/plugin.js';
import { BffError } from '../errors.js';
import { observabilityPlugin } from './health.js';
import { proxyPlugin } from '../proxy/plugin.js';
import { registerAbuseLimits, type SharedCounters } from './abuse-limits.js';
import { registerAuthHeaders } from './auth-headers.js';
import { type PageSite, renderError } from './error-handler.js';
import { registerRequestContext } from './request-context.js';
import { basePathOf, type BffServices, servicesFor, type UpgradeFrontend } from './services.js';

const DEFAULT_SECURITY_HEADERS = [
  ['x-content-type-options', 'nosniff'],
  ['referrer-policy', 'no-referrer'],
  ['x-frame-options', 'DENY'],
] as const;

/**
 * Every route of the BFF, its security headers and its error rendering, registered into `scope`:
 * the root of the standalone app (buildApp) or the encapsulated context of the fapiBff plugin, whose
 * prefix then applies to every path. `notFound`: also answer unknown paths (the standalone app owns
 * them; an embedding app keeps its own 404 handling).
 */
export async function registerBff(
  scope: FastifyInstance,
  services: BffServices,
  options: {
    notFound: boolean;
    redis?: SharedCounters | undefined;
    /** The frontend of a WebSocket upgrade (its URL rewritten inside it); absent: the one frontend. */
    upgradeFrontend?: UpgradeFrontend | undefined;
    /** The app's logger was made from `loggerOptions` (see RequestContextOptions). */
    requestFieldsMixin?: boolean;
  },
): Promise<void> {
  const { config } = services;
  // Error pages link to the request's frontend (its public URL and login path).
  const siteOf = (request: FastifyRequest): PageSite => {
    const s = servicesFor(request, services);
    return { publicUrl: s.config.publicUrl, loginPath: `${scope.prefix}${basePathOf(request)}/auth/login` };
  };
  // Callback-style hooks on every response: an async hook costs a promise and a microtask turn each.
  scope.addHook('onSend', (_request, reply, _payload, done) => {
    // Defaults, not overrides: a proxied response keeps the upstream's own (proxy/response-policy.ts).
    for (const [name, value] of DEFAULT_SECURITY_HEADERS)
      if (!reply.hasHeader(name)) reply.header(name, value);
    done();
  });
  registerRequestContext(scope, {
    accessLog: config.observability.accessLog,
    requestFieldsMixin: options.requestFieldsMixin === true,
  });
  registerAuthHeaders(scope, {
    prefix: `${scope.prefix}/auth/`,
    hsts: config.profile === 'production' && config.publicUrl.protocol === 'https:',
  });
  scope.setErrorHandler((err, request, reply) =>
    renderError(err, request, reply, servicesFor(request, services), siteOf(request)),
  );
  if (options.notFound) {
    scope.setNotFoundHandler((request, reply) =>
      renderError(
        new BffError('BFF_ROUTE_NOT_FOUND'),
        request,
        reply,
        servicesFor(request, services),
        siteOf(request),
      ),
    );
  }
  // Before the routes: it adds their onRequest hooks as they are registered.
  await registerAbuseLimits(scope, config.observability.limits, {
    prefix: scope.prefix,
    redis: options.redis,
    parEnabled: config.oidc.parEnabled,
  });
  await scope.register(async (child) => observabilityPlugin(child, services));
  await scope.register(async (child) => endpointsPlugin(child, services));
  await scope.register(async (child) => proxyPlugin(child, services, options.upgradeFrontend));
}
