import { randomBytes } from 'node:crypto';
import { validateHeaderValue } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { safeRedirectPath } from '../config/paths.js';
import { checkAuthenticationLevel, SILENT_LOGIN_ERRORS } from '../oauth/login-parameters.js';
import { BffError, isBffError } from '../errors.js';
import { needsRelay, sendRelayPage } from './callback-relay.js';
import { hostCookie, readCookie } from '../session/cookies.js';
import { type JarmOptions, openJarm, verifyJarm } from '../oauth/jarm.js';
import { checkIdTokenPolicy } from '../oauth/id-token-policy.js';
import { basePathOf, LOGIN_BINDING_COOKIE, type BffServices, servicesFor } from '../server/services.js';
import type { LoginTransaction } from '../session/login-transaction.js';
import { loginTrace } from '../session/login-trace.js';

/** ID token claims kept for GET /auth/session: protocol-only claims are dropped. */
const PROTOCOL_CLAIMS = new Set([
  'nonce',
  'at_hash',
  'c_hash',
  's_hash',
  'aud',
  'azp',
  'iat',
  'exp',
  'nbf',
  'jti',
]);

/** Query parameter added to `returnTo` when a `prompt=none` login ends without a session (README). */
export const SILENT_LOGIN_MARKER = 'bff_login_error';

/**
 * GET|POST /auth/callback — the redirect URI. Order matters: RFC 9207 `iss` first (mix-up defence,
 * before even looking at `error`), then the single-use transaction bound to this browser, then
 * the code exchange with PKCE and full ID token validation, then a brand-new session.
 */
export function registerCallback(app: FastifyInstance, root: BffServices): void {
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const s = servicesFor(request, root);
    const started = performance.now();
    try {
      const params = callbackParams(request);
      const binding = readCookie(request.headers.cookie, LOGIN_BINDING_COOKIE);
      // A cross-site arrival carries no binding cookie: re-submit it same-site (see callback-relay.ts).
      if (needsRelay(request, s.config.publicOrigin, binding !== undefined))
        return sendRelayPage(reply, request.method === 'POST' ? params : undefined, relayTarget(request));
      const result = await complete(s, request, reply, params, binding);
      s.metrics.callback('success', 'none', (performance.now() - started) / 1000, s.frontend);
      return result;
    } catch (err) {
      const code = isBffError(err) ? err.code : 'BFF_INTERNAL';
      s.metrics.callback('failure', code, (performance.now() - started) / 1000, s.frontend);
      s.audit.emit('login.failed', {
        stage: 'callback',
        code,
        reason: (isBffError(err) ? err.reason : undefined) ?? 'error',
      });
      throw err;
    }
  };
  app.get('/auth/callback', { config: { errorFormat: 'html' } }, handler);
  app.post('/auth/callback', { config: { errorFormat: 'html' } }, handler);
}

/** Where the relay page posts back to: this route, under the embedding prefix and the frontend's path. */
function relayTarget(request: FastifyRequest): string {
  const url = request.routeOptions.url ?? '/auth/callback';
  const prefix = basePathOf(request);
  return prefix ? url.replace(/\/auth\/callback$/, `${prefix}/auth/callback`) : url;
}

function callbackParams(request: FastifyRequest): URLSearchParams {
  if (request.method === 'POST') {
    if (typeof request.body !== 'string') {
      throw new BffError('BFF_CALLBACK_INVALID', { reason: 'body', detail: 'expected a form post' });
    }
    return new URLSearchParams(request.body);
  }
  const q = request.url.indexOf('?');
  return new URLSearchParams(q === -1 ? '' : request.url.slice(q + 1));
}

async function complete(
  s: BffServices,
  request: FastifyRequest,
  reply: FastifyReply,
  params: URLSearchParams,
  binding: string | undefined,
) {
  for (const name of ['iss', 'state', 'code', 'error', 'response']) {
    // RFC 9207 §2.4 / RFC 6749 §3.1: a parameter sent twice is a malformed response.
    if (params.getAll(name).length > 1) {
      throw new BffError('BFF_CALLBACK_INVALID', { reason: 'duplicate', detail: `duplicate ${name}` });
    }
  }
  const issuer = s.idp.metadata.issuer;
  // A signed response is verified as one even when a reload has switched JARM off since this login
  // started: the transaction says what the login asked for (checked below).
  const signed = params.get('response') !== null;
  // With JARM on, a plain response is accepted only for a login started while JARM was off.
  const plainInFlight = s.config.jarm.enabled && !signed && params.get('state') !== null;
  if (s.config.jarm.enabled ? !plainInFlight : signed) {
    const response = params.get('response');
    if (response === null) {
      // fragment.jwt: the browser keeps the fragment; a relay page posts it back (JARM §2.3.2).
      if (
        request.method === 'GET' &&
        s.config.jarm.mode === 'fragment.jwt' &&
        [...params.keys()].length === 0
      ) {
        // The route's own path: with the embeddable plugin it carries the prefix.
        return sendRelayPage(reply, undefined, relayTarget(request));
      }
      // With JARM on, a plain response is refused: it would skip every signature check.
      throw new BffError('BFF_CALLBACK_INVALID', {
        reason: 'jarm_required',
        detail: 'expected a signed authorization response',
      });
    }
    // https://www.rfc-editor.org/rfc/rfc9207#section-2.4: an outer iss must be ours (and equal the signed one, checked by verifyJarm).
    const outerIss = params.get('iss');
    if (outerIss !== null && outerIss !== issuer)
      throw new BffError('BFF_CALLBACK_ISS_MISMATCH', { reason: 'outer' });
    const options = jarmOptions(s);
    const opened = await openJarm(response, options);
    if (!opened.state)
      throw new BffError('BFF_CALLBACK_INVALID', { reason: 'state', detail: 'no state in the response' });
    const tx = await s.transactions.take(opened.state, binding);
    if (!s.config.jarm.enabled && tx.jarm !== true) {
      throw new BffError('BFF_CALLBACK_INVALID', {
        reason: 'jarm_unexpected',
        detail: 'a signed authorization response this login did not ask for',
      });
    }
    const inner = await verifyJarm(response, { outerIss, expectedState: tx.state, opened }, options);
    inner.set('iss', issuer);
    return finish(s, request, reply, tx, inner, response);
  }

  // RFC 9207 §2.4: required from a FAPI 2.0 AS (§5.3.2.2-7), compared by simple string comparison.
  const iss = params.get('iss');
  if (iss === null) {
    throw new BffError('BFF_CALLBACK_ISS_MISMATCH', {
      reason: 'missing',
      detail: 'the iss parameter is missing',
    });
  }
  if (iss !== issuer) throw new BffError('BFF_CALLBACK_ISS_MISMATCH', { reason: 'mismatch' });
  const state = params.get('state');
  if (!state)
    throw new BffError('BFF_CALLBACK_INVALID', { reason: 'state', detail: 'the state parameter is missing' });
  // With JARM on, a plain response would skip every signature check: only a login that did not ask
  // for JARM (started before a reload switched it on) may end with one. The refusal leaves the
  // transaction in place, so an injected plain response cannot use up the login it names.
  const tx = await s.transactions.take(state, binding, (t) =>
    plainInFlight && t.jarm !== false
      ? new BffError('BFF_CALLBACK_INVALID', {
          reason: 'jarm_required',
          detail: 'expected a signed authorization response',
        })
      : undefined,
  );
  return finish(s, request, reply, tx, params);
}

function jarmOptions(s: BffServices): JarmOptions {
  const enc = s.config.jarm.encryption;
  return {
    issuer: s.idp.metadata.issuer,
    clientId: s.config.oidc.clientId,
    mode: s.config.jarm.mode,
    algorithms: s.config.jarm.algsAllowed,
    // JARM §2.1 recommends 10 minutes; MS_BFF_JARM_MAX_LIFETIME_SECONDS tolerates longer-lived responses.
    maxLifetimeSec: s.config.interop.jarmMaxLifetimeSec,
    ...(enc
      ? {
          decryption: {
            key: (kid: string | undefined) => s.idp.keys.decryptionKey(kid) ?? enc.key.key,
            alg: enc.alg,
            enc: enc.enc,
          },
        }
      : {}),
    keys: s.jwks,
    replay: s.store,
    events: s.metrics.jarm,
    clock: s.clock,
  };
}

async function finish(
  s: BffServices,
  request: FastifyRequest,
  reply: FastifyReply,
  tx: LoginTransaction,
  params: URLSearchParams,
  jarmResponse?: string,
) {
  const error = params.get('error');
  // OIDC Core §3.1.2.6: a silent check (prompt=none) that would need the user answers "not signed in"
  // on the SPA's own page, with a documented marker, instead of an error page.
  if (error !== null && tx.requested?.prompt === 'none' && SILENT_LOGIN_ERRORS.has(error)) {
    const back = new URL(tx.returnTo, s.config.publicOrigin);
    back.searchParams.set(SILENT_LOGIN_MARKER, error);
    return reply
      .code(302)
      .header('cache-control', 'no-store')
      .header('location', `${back.pathname}${back.search}${back.hash}`)
      .send();
  }
  if (error !== null) {
    // RFC 6749 §4.1.2.1: access_denied is the resource owner (or the AS) declining; a user who pressed
    // "cancel" at the IdP gets a page that says so, not a failure.
    if (error === 'access_denied') {
      throw new BffError('BFF_LOGIN_CANCELLED', {
        reason: 'access_denied',
        detail: 'The sign-in was cancelled or declined at the identity provider. You are not signed in.',
      });
    }
    const safe = /^[A-Za-z0-9_.-]{1,64}$/.test(error) ? error : 'error';
    throw new BffError('BFF_CALLBACK_ACCESS_DENIED', {
      reason: 'authorization_error',
      detail: `The identity provider answered: ${safe}`,
    });
  }
  if (!params.get('code')) {
    throw new BffError('BFF_CALLBACK_INVALID', { reason: 'code', detail: 'the code parameter is missing' });
  }
  // The redirect_uri is ours from configuration, never derived from Host headers (https://www.rfc-editor.org/rfc/rfc9700#section-4.1).
  const current = new URL(s.config.redirectUri);
  current.search = params.toString();
  const tokens = await s.idp.exchangeCode(
    current,
    { codeVerifier: tx.codeVerifier, state: tx.state, nonce: tx.nonce, maxAge: tx.requested?.maxAge },
    tx.dpop ? await s.dpopKeys.get(tx.dpop) : undefined,
  );
  // https://www.rfc-editor.org/rfc/rfc8725#section-3: the ID token also passes the one JOSE policy every JWT we accept goes through (no
  // jku/x5u/x5c/jwk, no crit, kid selection by kty/alg/use), on top of openid-client's OIDC checks.
  if (tokens.idToken) {
    await checkIdTokenPolicy(tokens.idToken, s.jwks, {
      issuer: s.idp.metadata.issuer,
      clientId: s.config.oidc.clientId,
      alg: s.config.oidc.idTokenAlg,
    });
  }
  const claims = tokens.claims ?? {};
  if (tx.requested) checkAuthenticationLevel(tx.requested, claims);
  const sub = claims.sub;
  if (typeof sub !== 'string' || sub.length === 0)
    throw new BffError('BFF_ID_TOKEN_INVALID', { reason: 'sub' });

  // Session fixation: whatever session cookie came in is discarded and its session destroyed.
  const previous = await s.sessions
    .load(readCookie(request.headers.cookie, s.config.session.cookieName))
    .catch(() => undefined);
  if (previous) await s.sessions.destroy(previous.key);

  // Everything the response carries is settled before the session exists: a Location Node refuses
  // to send (a character outside Latin-1, RFC 9110 §5.5) used to fail the response after the session
  // was stored, leaving a session (and its refresh token) that no cookie points to. Transactions
  // saved by an older version may hold such a value: it is encoded here too.
  const location = safeRedirectPath(tx.returnTo) ?? '/';
  const shown: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(claims)) if (!PROTOCOL_CLAIMS.has(k)) shown[k] = v;
  const { cookieValue, session } = await s.sessions.create({
    sub,
    sid: typeof claims.sid === 'string' ? claims.sid : randomBytes(16).toString('base64url'),
    claims: shown,
    identity: { iss: claims.iss, sub, aud: claims.aud, azp: claims.azp, auth_time: claims.auth_time },
    idToken: tokens.idToken,
    accessToken: tokens.accessToken,
    tokenType: tokens.tokenType,
    accessTokenExpiresAt: s.clock() + tokens.expiresIn * 1000,
    refreshToken: tokens.refreshToken,
    scope: tokens.scope,
    dpop: tx.dpop,
    trace: loginTrace(s.config, s.clock(), {
      jarmResponse,
      dpopJkt: tx.dpop?.jkt,
      tokenType: tokens.tokenType,
      scope: tokens.scope,
    }),
  });
  s.metrics.session('created', s.frontend);
  s.audit.emit('login.succeeded', { sessionKey: session.key, sub, token_type: tokens.tokenType });
  try {
    // The login-binding cookie stays: other tabs may still be logging in with it; it expires by itself.
    const cookie = hostCookie(s.config.session.cookieName, cookieValue, {
      sameSite: s.config.session.sameSite,
      path: s.config.session.cookiePath,
    });
    validateHeaderValue('set-cookie', cookie);
    validateHeaderValue('location', location);
    reply
      .code(302)
      .header('cache-control', 'no-store')
      .header('set-cookie', cookie)
      .header('location', location);
  } catch (err) {
    // Never a session without a cookie pointing to it.
    await s.sessions.destroy(session.key);
    s.metrics.session('ended', s.frontend);
    throw err;
  }
  return reply.send();
}
