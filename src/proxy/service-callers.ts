import type { IncomingHttpHeaders } from 'node:http';
import type { RouteConfig } from '../config/types.js';
import type { BffServices } from '../server/services.js';
import { readCookie } from '../session/cookies.js';
import {
  type AccessTokenVerifier,
  DpopNonces,
  introspectionVerifier,
  jwtAccessTokenVerifier,
  validateDpopRequest,
} from '../dpop/validation.js';
import { ASSERTED_HEADER_PREFIX } from './forward.js';
import { originForm } from './target.js';

/** What is read from an incoming request: no framework type, so this module stays framework-free. */
export interface IncomingCall {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/** FAPI 2.0 §5.4.1 algs, for service callers' proofs and their IdP-signed access tokens. */
const ALGS = ['ES256', 'PS256'] as const;

/**
 * Service callers (https://www.rfc-editor.org/rfc/rfc9449#section-7): on routes with `serviceAudience`, a caller
 * without a session cookie may present its own DPoP-bound access token (RFC 9449 §7). The token and
 * the proof are validated here; the upstream gets the verified identity in `x-bff-caller-*` headers
 * (the caller's proof is bound to our URL, so it would mean nothing to the upstream).
 */
export class ServiceCallers {
  private readonly verifiers = new Map<string, AccessTokenVerifier>();
  private readonly nonces: DpopNonces | undefined;

  constructor(private readonly s: BffServices) {
    this.nonces = s.config.dpopNonceSecret ? new DpopNonces({ secret: s.config.dpopNonceSecret }) : undefined;
  }

  /** A service call is one that brings its own DPoP credential and no session cookie. */
  applies(route: RouteConfig, request: IncomingCall): boolean {
    if (!route.serviceAudience) return false;
    const auth = request.headers.authorization;
    if (typeof auth !== 'string' || !/^dpop\s/i.test(auth)) return false;
    return readCookie(request.headers.cookie, this.s.config.session.cookieName) === undefined;
  }

  async verify(route: RouteConfig, request: IncomingCall): Promise<Record<string, string>> {
    const audience = route.serviceAudience as string;
    const cacheKey = `${route.serviceTokens} ${audience}`;
    let verifier = this.verifiers.get(cacheKey);
    if (!verifier) {
      verifier =
        route.serviceTokens === 'introspection'
          ? introspectionVerifier(async (token) => {
              const result = await this.s.idp.introspect(token);
              // RFC 7662 §2.2: `aud` is optional; when present it must name this API.
              const aud = result.aud;
              const audiences = Array.isArray(aud) ? aud : aud === undefined ? [audience] : [aud];
              return audiences.includes(audience) ? result : { ...result, active: false };
            })
          : jwtAccessTokenVerifier({
              issuer: this.s.idp.metadata.issuer,
              audience,
              keys: this.s.jwks,
              algorithms: ALGS,
              clock: this.s.clock,
            });
      this.verifiers.set(cacheKey, verifier);
    }
    const { claims, jkt } = await validateDpopRequest(
      {
        method: request.method,
        // §4.3 step 9: htu is the URL the caller used: our public origin, not an upstream's.
        url: `${this.s.config.publicOrigin}${originForm(request.url)}`,
        authorization: request.headers.authorization,
        dpop: request.headers.dpop,
      },
      {
        verifier,
        proofAlgorithms: ALGS,
        replay: this.s.store,
        events: {
          failure: (reason) => {
            this.s.metrics.dpopValidation.failure(reason);
            this.s.audit.emit('dpop.refused', { reason, route: route.name });
          },
        },
        clock: this.s.clock,
        ...(this.nonces ? { nonces: this.nonces } : {}),
      },
    );
    const asserted: Record<string, string> = { [`${ASSERTED_HEADER_PREFIX}jkt`]: jkt };
    for (const [claim, header] of [
      ['sub', 'sub'],
      ['client_id', 'client-id'],
      ['scope', 'scope'],
    ] as const) {
      const value = claims[claim];
      if (typeof value === 'string' && /^[\x20-\x7e]{1,512}$/.test(value))
        asserted[`${ASSERTED_HEADER_PREFIX}${header}`] = value;
    }
    return asserted;
  }
}
