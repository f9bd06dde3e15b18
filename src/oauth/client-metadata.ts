import type { BffConfig } from '../config/types.js';

/**
 * What the IdP must know about this BFF, as RFC 7591 / OIDC Dynamic Client Registration metadata:
 * the body of a registration request (the DCR issue posts it), and the reference for registering by
 * hand. Derived from the same frozen configuration the BFF runs on, so the two cannot drift.
 *
 * @see RFC 7591 §2, RFC 9101 §10.5 (require_signed_request_object), JARM §3 (authorization_*),
 *      RFC 9126 §6 (require_pushed_authorization_requests), OIDC Back-Channel Logout §2.2
 */
export function registrationMetadata(config: BffConfig): Record<string, unknown> {
  const origin = config.publicOrigin;
  const md: Record<string, unknown> = {
    client_id: config.oidc.clientId,
    application_type: 'web',
    redirect_uris: [config.redirectUri],
    post_logout_redirect_uris: [new URL(config.postLogoutRedirect, config.publicUrl).href],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: config.oidc.tokenAuthMethod,
    id_token_signed_response_alg: config.oidc.idTokenAlg,
    require_pushed_authorization_requests: config.oidc.parEnabled,
  };
  if (config.signingKey || config.jarm.encryption) md.jwks_uri = `${origin}/.well-known/jwks.json`;
  if (config.oidc.tokenAuthMethod === 'private_key_jwt' && config.signingKey) {
    md.token_endpoint_auth_signing_alg = config.signingKey.alg;
  }
  if (config.jar.enabled) {
    md.request_object_signing_alg = config.jar.signingAlg;
    md.require_signed_request_object = true;
    if (config.jar.encryption) {
      md.request_object_encryption_alg = config.jar.encryption.alg;
      md.request_object_encryption_enc = config.jar.encryption.enc;
    }
  }
  if (config.jarm.enabled) {
    // One pinned alg, never `none` (https://openid.net/specs/oauth-v2-jarm-final.html#section-3): the first of our allowlist.
    md.authorization_signed_response_alg = config.jarm.algsAllowed[0];
    md.response_modes = [config.jarm.mode];
    if (config.jarm.encryption) {
      md.authorization_encrypted_response_alg = config.jarm.encryption.alg;
      md.authorization_encrypted_response_enc = config.jarm.encryption.enc;
    }
  }
  return md;
}
