import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BffError } from '../errors.js';
import { basePathOf, type BffServices, servicesFor, type UpgradeFrontend } from '../server/services.js';
import { checkCsrf } from '../session/csrf.js';
import { tracingStarted } from '../observability/otel-sdk.js';
import { SpanKind, withSpan } from '../observability/tracing.js';
import { upstreamCredential } from './credentials.js';
import { ServiceCallers } from './service-callers.js';
import { browserResponseHeaders } from './response-policy.js';
import { proxyTarget } from './target.js';
import { stepUpRequired } from './step-up.js';
import { routeOf, WebSocketProxy } from './websocket.js';

const METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'] as const;

/**
 * ANY /api/<name>/** → the upstream named <name>, with the user's access token attached. API calls
 * never get a redirect: no session is a 401 problem+json the SPA can act on (Duende's X-CSRF model).
 */
export async function proxyPlugin(
  app: FastifyInstance,
  root: BffServices,
  upgradeFrontend?: UpgradeFrontend,
): Promise<void> {
  // Bodies are streamed to the upstream untouched: no parser consumes them here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  // Per frontend's services: service callers keep DPoP nonce state.
  const callers = new WeakMap<BffServices, ServiceCallers>();
  // The static segments before the route name: the embedding plugin's prefix, if any, then `api`.
  const mount = [...app.prefix.split('/').filter(Boolean), 'api'];
  const proxy = async (
    request: FastifyRequest<{ Params: { route: string; '*': string } }>,
    reply: FastifyReply,
  ): Promise<void> => {
    const started = performance.now();
    const s = servicesFor(request, root);
    const base = `${app.prefix}${basePathOf(request)}`;
    const loginPath = `${base}/auth/login`;
    const policy = { ...s.config.csrf, publicOrigin: s.config.publicOrigin };
    const publicProto = s.config.publicUrl.protocol.slice(0, -1);
    let services = callers.get(s);
    if (!services) callers.set(s, (services = new ServiceCallers(s)));
    const route = s.config.routes.get(request.params.route);
    let asserted: Record<string, string> | undefined;
    if (route && services.applies(route, request)) {
      // No CSRF check: the caller sends no cookie, so no ambient credential can be abused.
      asserted = await services.verify(route, request);
    } else {
      const csrf = checkCsrf(request.headers, policy);
      if (csrf) throw csrf;
    }
    if (!route) throw new BffError('BFF_ROUTE_NOT_FOUND', { detail: 'no API route with that name' });
    // A kill switch (route `enabled: false`), applied by a configuration reload.
    if (route.enabled === false) throw new BffError('BFF_ROUTE_DISABLED', { reason: 'route_disabled' });

    // Service callers bring their own token (checked above); everyone else gets the route's policy.
    const { authorization, dpop, refresh } = asserted
      ? { authorization: undefined, dpop: undefined, refresh: undefined }
      : await upstreamCredential(s, route, request);
    const target = proxyTarget(request.url, mount, request.params.route);
    let upstream: Awaited<ReturnType<typeof s.forwarder.forward>>;
    try {
      const forward = () =>
        s.forwarder.forward({
          route,
          rest: target.rest,
          query: target.query,
          method: request.method,
          headers: request.headers,
          csrfHeader: s.config.csrf.headerName,
          raw: request.raw,
          authorization,
          requestId: request.id,
          dpop,
          refresh,
          asserted,
          forwarded: { clientIp: request.ip, host: s.config.publicUrl.host, proto: publicProto },
        });
      // Without an SDK the client span would be a non-recording copy of the server span's context
      // (same ids in the traceparent sent upstream): skip making it, an AsyncLocalStorage run per call.
      upstream = tracingStarted()
        ? await withSpan(
            `proxy ${route.name}`,
            { 'bff.route': route.name, 'http.request.method': request.method },
            async (span) => {
              const res = await forward();
              span.setAttribute('http.response.status_code', res.status);
              return res;
            },
            SpanKind.CLIENT,
          )
        : await forward();
    } catch (err) {
      s.metrics.proxied(
        route.name,
        (err as BffError).statusCode ?? 502,
        (performance.now() - started) / 1000,
      );
      throw err;
    }
    s.metrics.proxied(route.name, upstream.status, (performance.now() - started) / 1000);
    const stepUp = stepUpRequired(upstream.status, upstream.headers['www-authenticate'], loginPath);
    if (stepUp) {
      upstream.body.resume();
      throw stepUp;
    }
    const headers = browserResponseHeaders({
      route,
      authenticated: authorization !== undefined || dpop !== undefined || asserted !== undefined,
      headers: upstream.headers,
      publicBase: `${base}/api/${route.name}`,
    });
    reply.code(upstream.status).headers(headers).send(upstream.body);
  };
  // A callback-style handler. An async handler must return `reply`, which Fastify then awaits as a
  // thenable: an end-of-stream watcher on every response and two more promise turns per call. A
  // failure goes to the error handler as a thrown one would (Fastify's own rule for async handlers).
  const handler = (
    request: FastifyRequest<{ Params: { route: string; '*': string } }>,
    reply: FastifyReply,
  ): void => {
    proxy(request, reply).then(undefined, (err: unknown) => {
      if (reply.sent) request.log.error({ err }, 'Promise errored, but reply.sent = true was set');
      else reply.send(err instanceof Error ? err : new Error(String(err)));
    });
  };
  // No body parser and no context-dependent stream listeners here: skip binding the emitters
  // (src/server/request-context.ts); the handler runs in the request's context all the same.
  const config = { bindEmitters: false };
  app.route({ method: [...METHODS], url: '/api/:route/*', handler, config });
  app.route({ method: [...METHODS], url: '/api/:route', handler, config });
  registerWebSockets(app, root, mount, upgradeFrontend);
}

/**
 * Upgrades reach the Node server's `upgrade` event, not Fastify's router: ours are answered by the
 * WebSocket proxy; others are left to any other listener (or cut off when there is none).
 */
function registerWebSockets(
  app: FastifyInstance,
  root: BffServices,
  mount: readonly string[],
  upgradeFrontend: UpgradeFrontend | undefined,
): void {
  // One proxy per frontend's services, made on its first upgrade (it follows that frontend's
  // session ends); a reload's new services get their own, old connections stay on the old one.
  const proxies = new Map<BffServices, WebSocketProxy>();
  const proxyOf = (s: BffServices) => {
    let proxy = proxies.get(s);
    if (!proxy) {
      proxy = new WebSocketProxy(s, mount, app.log, s.config.websocketRecheckSec * 1000);
      proxies.set(s, proxy);
    }
    return proxy;
  };
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // A browser that goes away mid-handshake must not become an uncaught 'error'.
    socket.on('error', () => socket.destroy());
    const s = upgradeFrontend ? upgradeFrontend(request)?.services : root;
    const route = s ? routeOf(s, mount, request.url ?? '/') : undefined;
    if (s && route) void proxyOf(s).upgrade(route, request, socket, head);
    else if (app.server.listenerCount('upgrade') === 1) socket.destroy();
  };
  app.server.on('upgrade', onUpgrade);
  app.addHook('preClose', async () => {
    app.server.off('upgrade', onUpgrade);
    for (const proxy of proxies.values()) proxy.close();
  });
}
