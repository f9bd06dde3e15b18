import type { FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import { safeRedirectPath } from '../config/paths.js';
import { BffError, isBffError } from '../errors.js';
import { hostCookie, readCookie } from '../session/cookies.js';
import { generateDpopKey } from '../dpop/client.js';
import { authorizationParameters, loginParameters, userTokenResources } from '../oauth/login-parameters.js';
import { checkSameOrigin } from '../session/csrf.js';
import { LOGIN_BINDING_COOKIE, type BffServices, servicesFor } from '../server/services.js';

/**
 * GET /auth/login?returnTo=/path — start a login: a server-side transaction (state, nonce, PKCE
 * verifier), a PAR request, then a redirect carrying only client_id and request_uri.
 */
export function registerLogin(app: FastifyInstance, root: BffServices): void {
  app.get<{ Querystring: Record<string, unknown> & { returnTo?: string } }>(
    '/auth/login',
    { config: { errorFormat: 'html' } },
    async (request, reply) => {
      const s = servicesFor(request, root);
      const started = performance.now();
      const rawReturnTo = request.query.returnTo ?? '/';
      // No open redirector (https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.3.3.1).
      // Only same-origin relative paths are accepted, kept in the form the callback can send as its
      // Location (non-ASCII percent-encoded).
      const returnTo = typeof rawReturnTo === 'string' ? safeRedirectPath(rawReturnTo) : undefined;
      if (returnTo === undefined) throw new BffError('BFF_LOGIN_INVALID_RETURN_TO');
      // https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.3.3.1 (protected initiation): a cross-site page must not be able to start logins (and PAR requests) for a user.
      const csrf = checkSameOrigin(
        request.headers,
        { ...s.config.csrf, publicOrigin: s.config.publicOrigin },
        true,
      );
      if (csrf) throw csrf;
      // Step-up and silent checks (OIDC Core §3.1.2.1, RFC 9470 §4): only what the frontend allows.
      const requested = loginParameters(request.query, s.config.oidc.loginParamsAllowed);

      let binding = readCookie(request.headers.cookie, LOGIN_BINDING_COOKIE);
      if (!s.transactions.isValidBinding(binding)) {
        binding = s.transactions.newBinding();
        reply.header(
          'set-cookie',
          hostCookie(LOGIN_BINDING_COOKIE, binding, {
            // Never weaker than the session cookie; cross-site callbacks come back through the relay.
            sameSite: s.config.session.sameSite,
            maxAgeSec: s.config.session.loginTimeoutSec,
          }),
        );
      }
      const codeVerifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      try {
        const dpop = s.config.oidc.dpopEnabled ? await generateDpopKey(s.config.oidc.dpopAlg) : undefined;
        await s.transactions.save(
          { state, nonce, codeVerifier, returnTo, dpop, requested, jarm: s.config.jarm.enabled },
          binding,
        );
        const url = await s.idp.authorizationUrl({
          state,
          nonce,
          codeChallenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
          dpop: dpop ? await s.dpopKeys.get(dpop) : undefined,
          extra: authorizationParameters(requested),
          resources: userTokenResources(s.config.routes.values()),
        });
        s.metrics.loginStarted('success', (performance.now() - started) / 1000, s.frontend);
        return reply.code(302).header('cache-control', 'no-store').header('location', url.href).send();
      } catch (err) {
        s.metrics.loginStarted('failure', 0, s.frontend);
        s.audit.emit('login.failed', {
          stage: 'start',
          code: isBffError(err) ? err.code : 'BFF_INTERNAL',
          reason: (isBffError(err) ? err.reason : undefined) ?? 'error',
        });
        throw err;
      }
    },
  );
}
