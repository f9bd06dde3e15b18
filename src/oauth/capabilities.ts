import type { BffConfig } from '../config/types.js';
import { capabilityChecks } from './capability-checks.js';

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
  dpop_signing_alg_values_supported?: unknown;
  mtls_endpoint_aliases?: unknown;
  backchannel_logout_supported?: unknown;
  backchannel_logout_session_supported?: unknown;
  registration_endpoint?: unknown;
}

/**
 * What the enabled features need from the IdP, checked once at startup so a misconfigured pair
 * fails fast with every gap named, rather than at the first user's login. The same checks feed the
 * compliance gate (capability-checks.ts).
 *
 * @see FAPI 2.0 Security Profile §5.3.3.1-9/-11 (metadata), §5.3.3.2 (PAR, PKCE, RFC 9207)
 * @see RFC 8414 §2 (metadata names and defaults)
 */
export function missingCapabilities(config: BffConfig, md: IdpMetadata): string[] {
  return capabilityChecks(config, md)
    .filter((c) => c.startup && c.enabled)
    .flatMap((c) => c.gaps);
}
