import type { BffConfig } from '../config/types.js';

/** The subset of RFC 8414 / OIDC Discovery metadata the capability check reads. */
export interface IdpMetadata {
  issuer?: unknown;
  authorization_endpoint?: unknown;
  token_endpoint?: unknown;
  pushed_authorization_request_endpoint?: unknown;
  code_challenge_methods_supported?: unknown;
  authorization_response_iss_parameter_supported?: unknown;
  token_endpoint_auth_methods_supported?: unknown;
  token_endpoint_auth_signing_alg_values_supported?: unknown;
  id_token_signing_alg_values_supported?: unknown;
  response_types_supported?: unknown;
  jwks_uri?: unknown;
  request_object_signing_alg_values_supported?: unknown;
  tls_client_certificate_bound_access_tokens?: unknown;
  request_object_encryption_alg_values_supported?: unknown;
  request_object_encryption_enc_values_supported?: unknown;
  request_parameter_supported?: unknown;
  response_modes_supported?: unknown;
  authorization_signing_alg_values_supported?: unknown;
  authorization_encryption_alg_values_supported?: unknown;
  authorization_encryption_enc_values_supported?: unknown;
}

/**
 * What the enabled features need from the IdP, checked once at startup so a misconfigured pair
 * fails fast with every gap named, rather than at the first user's login.
 *
 * @see FAPI 2.0 Security Profile §5.3.3.1-9/-11 (metadata), §5.3.3.2 (PAR, PKCE, RFC 9207)
 * @see RFC 8414 §2 (metadata names and defaults)
 */
export function missingCapabilities(config: BffConfig, md: IdpMetadata): string[] {
  const missing: string[] = [];
  const list = (v: unknown): string[] | undefined =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
  const expectedIssuer = config.oidc.issuer.href.replace(/\/$/, '');
  const actual = typeof md.issuer === 'string' ? md.issuer.replace(/\/$/, '') : undefined;
  // SP-C11: the metadata `issuer` must be the identifier we discovered from (mix-up defence).
  if (actual !== expectedIssuer)
    missing.push(`issuer: metadata says ${JSON.stringify(md.issuer)}, expected ${expectedIssuer}`);
  if (typeof md.authorization_endpoint !== 'string' && !config.oidc.authorizationUrl) {
    missing.push('authorization_endpoint');
  }
  if (typeof md.token_endpoint !== 'string' && !config.oidc.tokenUrl) missing.push('token_endpoint');
  if (typeof md.jwks_uri !== 'string') missing.push('jwks_uri (needed to verify ID token signatures)');
  if (config.oidc.parEnabled && typeof md.pushed_authorization_request_endpoint !== 'string') {
    missing.push('pushed_authorization_request_endpoint (MS_BFF_PAR_ENABLED=true)');
  }
  if (!list(md.code_challenge_methods_supported)?.includes('S256')) {
    missing.push('code_challenge_methods_supported must include S256 (PKCE)');
  }
  // MS_BFF_ASSUME_ISS_PARAMETER: the callback requires and compares iss whatever the metadata says.
  if (md.authorization_response_iss_parameter_supported !== true && !config.interop.assumeIssParameter) {
    missing.push(
      'authorization_response_iss_parameter_supported must be true (RFC 9207 mix-up defence; if the IdP sends iss anyway, see MS_BFF_ASSUME_ISS_PARAMETER)',
    );
  }
  const responseTypes = list(md.response_types_supported);
  if (responseTypes && !responseTypes.includes('code'))
    missing.push('response_types_supported must include code');
  // RFC 8414 §2: absent token_endpoint_auth_methods_supported means client_secret_basic only.
  const methods = list(md.token_endpoint_auth_methods_supported) ?? ['client_secret_basic'];
  const method = config.oidc.tokenAuthMethod;
  if (!methods.includes(method)) missing.push(`token_endpoint_auth_methods_supported must include ${method}`);
  if (method === 'private_key_jwt' && config.signingKey) {
    const algs = list(md.token_endpoint_auth_signing_alg_values_supported);
    if (!algs?.includes(config.signingKey.alg)) {
      missing.push(`token_endpoint_auth_signing_alg_values_supported must include ${config.signingKey.alg}`);
    }
  }
  const idAlgs = list(md.id_token_signing_alg_values_supported);
  if (!idAlgs?.includes(config.oidc.idTokenAlg)) {
    missing.push(
      `id_token_signing_alg_values_supported must include ${config.oidc.idTokenAlg} (MS_BFF_ID_TOKEN_ALG)`,
    );
  }
  // RFC 8705 §3: routes with certificate-bound tokens need an IdP that binds them.
  if (
    [...config.routes.values()].some((r) => r.mtls) &&
    md.tls_client_certificate_bound_access_tokens !== true
  ) {
    missing.push('tls_client_certificate_bound_access_tokens must be true (routes with mtls: true)');
  }
  // Seed 002 §8: JAR and JARM capabilities, only when the features are on.
  if (config.jar.enabled) {
    if (!list(md.request_object_signing_alg_values_supported)?.includes(config.jar.signingAlg)) {
      missing.push(
        `request_object_signing_alg_values_supported must include ${config.jar.signingAlg} (MS_BFF_JAR_ENABLED)`,
      );
    }
    if (!config.oidc.parEnabled && md.request_parameter_supported !== true) {
      missing.push('request_parameter_supported must be true (JAR without PAR sends request= inline)');
    }
    const enc = config.jar.encryption;
    if (enc) {
      if (!list(md.request_object_encryption_alg_values_supported)?.includes(enc.alg)) {
        missing.push(`request_object_encryption_alg_values_supported must include ${enc.alg}`);
      }
      if (!list(md.request_object_encryption_enc_values_supported)?.includes(enc.enc)) {
        missing.push(`request_object_encryption_enc_values_supported must include ${enc.enc}`);
      }
    }
  }
  // OIDC Discovery §3: response_modes_supported defaults to ["query", "fragment"].
  if (!config.jarm.enabled && config.oidc.responseMode === 'form_post') {
    if (!list(md.response_modes_supported)?.includes('form_post'))
      missing.push('response_modes_supported must include form_post (MS_BFF_RESPONSE_MODE)');
  }
  if (config.jarm.enabled) {
    if (!list(md.response_modes_supported)?.includes(config.jarm.mode)) {
      missing.push(`response_modes_supported must include ${config.jarm.mode} (MS_BFF_JARM_MODE)`);
    }
    const algs = list(md.authorization_signing_alg_values_supported) ?? [];
    if (!config.jarm.algsAllowed.some((a) => algs.includes(a))) {
      missing.push(
        `authorization_signing_alg_values_supported must include one of ${config.jarm.algsAllowed.join(', ')}`,
      );
    }
    const enc = config.jarm.encryption;
    if (enc) {
      if (!list(md.authorization_encryption_alg_values_supported)?.includes(enc.alg)) {
        missing.push(`authorization_encryption_alg_values_supported must include ${enc.alg}`);
      }
      if (!list(md.authorization_encryption_enc_values_supported)?.includes(enc.enc)) {
        missing.push(`authorization_encryption_enc_values_supported must include ${enc.enc}`);
      }
    }
  }
  return missing;
}
