import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BffError } from '../errors.js';
import { currentSession } from '../session/current.js';
import type { BffServices } from '../server/services.js';
import { checkCsrf } from '../session/csrf.js';
import type { UpstreamDpop } from './forward.js';
import { ServiceCallers } from './service-callers.js';
import { browserResponseHeaders } from './response-policy.js';
import { proxyTarget } from './target.js';

const METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'] as const;

/**
 * ANY /api/<name>/** → the upstream named <name>, with the user's access token attached. API calls
 * never get a redirect: no session is a 401 problem+json the SPA can act on (Duende's X-CSRF model).
 */
export async function proxyPlugin(app: FastifyInstance, s: BffServices): Promise<void> {
  // Bodies are streamed to the upstream untouched: no parser consumes them here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  const policy = { ...s.config.csrf, publicOrigin: s.config.publicOrigin };
  const services = new ServiceCallers(s);
  const publicProto = s.config.publicUrl.protocol.slice(0, -1);
  // The static segments before the route name: the embedding plugin's prefix, if any, then `api`.
  const mount = [...app.prefix.split('/').filter(Boolean), 'api'];
  const handler = async (
    request: FastifyRequest<{ Params: { route: string; '*': string } }>,
    reply: FastifyReply,
  ) => {
    const started = performance.now();
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

    let authorization: string | undefined;
    let dpop: UpstreamDpop | undefined;
    if (route.token === 'user' && !asserted) {
      const loaded = await currentSession(s, request);
      if (!loaded) throw new BffError('BFF_SESSION_REQUIRED');
      const session = await s.tokens.ensureFresh(loaded);
      const stored = session.data.dpop;
      if (stored && session.data.tokenType === 'dpop') {
        const key = await s.dpopKeys.get(stored);
        const accessToken = session.data.accessToken;
        dpop = {
          accessToken,
          proof: (htm, htu, nonce) => key.proof({ htm, htu, nonce, accessToken }),
          nonce: (origin) => s.dpopNonces.get(origin),
          rememberNonce: (origin, nonce) => void s.dpopNonces.set(origin, nonce),
          retrySkipped: () => {
            s.metrics.dpopRetrySkipped();
            request.log.warn(
              { route: route.name },
              'DPoP nonce retry skipped: the request body cannot be replayed',
            );
          },
        };
      } else {
        // RFC 6750 §2.1 (FAPI 2.0 §5.3.3.1-3: only ever in the Authorization header).
        authorization = `Bearer ${session.data.accessToken}`;
      }
    }
    const target = proxyTarget(request.url, mount, request.params.route);
    let upstream: Awaited<ReturnType<typeof s.forwarder.forward>>;
    try {
      upstream = await s.forwarder.forward({
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
        asserted,
        forwarded: { clientIp: request.ip, host: s.config.publicUrl.host, proto: publicProto },
      });
    } catch (err) {
      s.metrics.proxied(
        route.name,
        (err as BffError).statusCode ?? 502,
        (performance.now() - started) / 1000,
      );
      throw err;
    }
    s.metrics.proxied(route.name, upstream.status, (performance.now() - started) / 1000);
    const headers = browserResponseHeaders({
      route,
      authenticated: route.token === 'user' || asserted !== undefined,
      headers: upstream.headers,
      publicBase: `${app.prefix}/api/${route.name}`,
    });
    return reply.code(upstream.status).headers(headers).send(upstream.body);
  };
  app.route({ method: [...METHODS], url: '/api/:route/*', handler });
  app.route({ method: [...METHODS], url: '/api/:route', handler });
}
