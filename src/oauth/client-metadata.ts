import { X509Certificate } from 'node:crypto';
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
  // A frontend served under a path prefix has its endpoints there (`<publicUrl><pathPrefix>…`).
  const base = config.redirectUri.replace(/auth\/callback$/, '');
  if (config.signingKey || config.jarm.encryption) md.jwks_uri = `${base}.well-known/jwks.json`;
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
  // RFC 9449 §5.2: every access token of this client is DPoP-bound.
  if (config.oidc.dpopEnabled) md.dpop_bound_access_tokens = true;
  // RFC 8705 §3.4: certificate-bound tokens; §2.1.2: the subject the IdP matches for tls_client_auth.
  if ([...config.routes.values()].some((r) => r.mtls)) md.tls_client_certificate_bound_access_tokens = true;
  if (config.oidc.tokenAuthMethod === 'tls_client_auth' && config.tls.cert) {
    md.tls_client_auth_subject_dn = subjectDn(config.tls.cert);
  }
  // OIDC Back-Channel Logout 1.0 §2.2: our receiver, and we need `sid` to find the session.
  md.backchannel_logout_uri = `${base}auth/backchannel-logout`;
  md.backchannel_logout_session_required = true;
  return md;
}

/**
 * The body of an RFC 7591 registration request: the metadata without `client_id`, which the IdP
 * assigns (RFC 7591 §3.2.1). What `fapi-bff client-metadata` prints and `fapi-bff register` sends.
 */
export function registrationRequestBody(config: BffConfig): Record<string, unknown> {
  const { client_id: _omitted, ...body } = registrationMetadata(config);
  return body;
}

/**
 * The certificate's subject as an RFC 4514 string (most specific RDN first), as RFC 8705 §2.1.2
 * `tls_client_auth_subject_dn` expects. Node lists the RDNs in certificate order, one per line.
 */
function subjectDn(pem: string): string {
  const escape = (value: string) => value.replace(/([,+"\\<>;])/g, '\\$1').replace(/^([ #])/, '\\$1');
  return new X509Certificate(pem).subject
    .split('\n')
    .filter(Boolean)
    .reverse()
    .map((rdn) => {
      const eq = rdn.indexOf('=');
      return `${rdn.slice(0, eq)}=${escape(rdn.slice(eq + 1))}`;
    })
    .join(',');
}
