import { loadSigningKey } from '../keys.js';
import type { RouteConfig, SigningKey } from '../types.js';
import type { RuleContext } from './context.js';

/**
 * Client authentication at the IdP and the binding of tokens to the client:
 * - private_key_jwt needs a signing key (https://openid.net/specs/openid-connect-core-1_0.html#ClientAuthentication);
 * - tls_client_auth / self_signed_tls_client_auth need a certificate (https://www.rfc-editor.org/rfc/rfc8705#section-2);
 * - client_secret_post puts the secret in request bodies: development only.
 */
export async function clientAuth(
  ctx: RuleContext,
): Promise<{ clientSecret: string | undefined; signingKey: SigningKey | undefined }> {
  const v = ctx.values;
  const method = v.MS_BFF_TOKEN_AUTH_METHOD;
  if (method === 'client_secret_post') {
    if (ctx.production)
      ctx.problem('MS_BFF_TOKEN_AUTH_METHOD', 'client_secret_post is refused in production');
    else ctx.warn('MS_BFF_TOKEN_AUTH_METHOD=client_secret_post: the secret travels in request bodies');
  }
  if ((method === 'tls_client_auth' || method === 'self_signed_tls_client_auth') && !v.MTLS_CERT) {
    ctx.problem('MTLS_CERT', `is required for ${method} (RFC 8705 §2)`);
  }
  if (method.startsWith('client_secret') && !v.OIDC_CLIENT_SECRET) {
    ctx.problem('OIDC_CLIENT_SECRET', `is required for ${method}`);
  }

  let signingKey: SigningKey | undefined;
  if (v.BFF_JWT_SIGNING_KEY !== undefined) {
    const loaded = await loadSigningKey(v.BFF_JWT_SIGNING_KEY, v.BFF_JWT_SIGNING_ALG);
    if (typeof loaded === 'string') ctx.problem('BFF_JWT_SIGNING_KEY', loaded);
    else signingKey = loaded;
  } else if (method === 'private_key_jwt') {
    ctx.problem(
      'BFF_JWT_SIGNING_KEY',
      'is required for private_key_jwt (the default MS_BFF_TOKEN_AUTH_METHOD)',
    );
  }

  // Clients shall use pushed authorization requests
  // (https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.3.2.2): production
  // refuses to run without; development warns.
  if (!v.MS_BFF_PAR_ENABLED) {
    if (ctx.production)
      ctx.problem('MS_BFF_PAR_ENABLED', 'false is refused in production: FAPI 2.0 requires PAR (RFC 9126)');
    else ctx.warn('MS_BFF_PAR_ENABLED=false: FAPI 2.0 requires PAR (Security Profile §5.3.2.2)');
  }
  return { clientSecret: v.OIDC_CLIENT_SECRET, signingKey };
}

/**
 * One binding per client: the IdP binds a client's tokens either to a DPoP key
 * (https://www.rfc-editor.org/rfc/rfc9449) or to its TLS certificate
 * (https://www.rfc-editor.org/rfc/rfc8705#section-3); mixing them per route would send tokens bound to
 * one over the other.
 */
export function tokenBinding(ctx: RuleContext, routes: ReadonlyMap<string, RouteConfig>): void {
  const mtlsRoutes = [...routes.values()].filter((r) => r.mtls).map((r) => r.name);
  if (mtlsRoutes.length === 0) return;
  if (!ctx.values.MTLS_CERT) {
    ctx.problem(
      'MTLS_CERT',
      `is required: routes ${mtlsRoutes.join(', ')} send certificate-bound tokens (mtls: true)`,
    );
  }
  if (ctx.values.MS_BFF_DPOP_ENABLED) {
    ctx.problem(
      'MS_BFF_DPOP_ENABLED',
      'DPoP-bound and certificate-bound (mtls: true routes) tokens are exclusive per client; choose one',
    );
  }
}
