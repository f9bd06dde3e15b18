import type { FastifyInstance } from 'fastify';
import { isBffError } from '../errors.js';
import { verifyLogoutToken } from '../oauth/logout-token.js';
import { type BffServices, servicesFor } from '../server/services.js';

/**
 * POST /auth/backchannel-logout — OpenID Connect Back-Channel Logout 1.0 §2.5/§2.8: the IdP posts a
 * `logout_token`; every session it names ends, on every instance sharing the store. 200 on
 * success, 400 with an OAuth-style error otherwise, always `Cache-Control: no-store`. No CSRF
 * header: the caller is the IdP, authenticated by the token's signature.
 */
export function registerBackchannelLogout(app: FastifyInstance, root: BffServices): void {
  app.post('/auth/backchannel-logout', async (request, reply) => {
    const s = servicesFor(request, root);
    reply.header('cache-control', 'no-store');
    const body = typeof request.body === 'string' ? new URLSearchParams(request.body) : new URLSearchParams();
    const tokens = body.getAll('logout_token');
    if (tokens.length !== 1 || !tokens[0]) {
      s.metrics.backchannelLogout('invalid', s.frontend);
      return reply
        .code(400)
        .send({ error: 'invalid_request', error_description: 'exactly one logout_token is required' });
    }
    try {
      const { sid, sub } = await verifyLogoutToken(tokens[0], {
        issuer: s.idp.metadata.issuer,
        clientId: s.config.oidc.clientId,
        algorithms: [s.config.oidc.idTokenAlg],
        keys: s.jwks,
        replay: s.store,
        requireExp: s.config.interop.logoutTokenRequireExp,
        clock: s.clock,
      });
      const ended = await s.sessions.destroyBy({ ...(sid ? { sid } : {}), ...(sub ? { sub } : {}) });
      for (let i = 0; i < ended; i++) s.metrics.session('ended', s.frontend);
      s.metrics.backchannelLogout('success', s.frontend);
      s.audit.emit('backchannel_logout', { sub, sid, sessions_ended: ended });
      return reply.code(200).send();
    } catch (err) {
      if (isBffError(err) && err.code === 'BFF_LOGOUT_TOKEN_INVALID') {
        s.metrics.backchannelLogout('invalid', s.frontend);
        s.metrics.error(err.code);
        request.log.info({ reason: err.reason }, 'back-channel logout token refused');
        return reply.code(400).send({ error: 'invalid_request', error_description: err.reason });
      }
      throw err;
    }
  });
}
