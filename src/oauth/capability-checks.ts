import type { BffConfig } from '../config/types.js';
import { JWE_ALGS, JWE_ENCS } from '../config/enc-keys.js';

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

/** One thing the IdP must offer for one of our features, evaluated against its metadata. */
export interface CapabilityCheck {
  readonly id: CapabilityId;
  /** The feature is on in this configuration (always-on requirements: true). */
  readonly enabled: boolean;
  /** What the IdP lacks for the feature as configured (or, when it is off, as it would be configured). */
  readonly gaps: readonly string[];
  /** Checked at startup too: a gap while enabled refuses to start (BFF_IDP_CAPABILITY_MISSING). */
  readonly startup: boolean;
  /** The IdP may lack it without harm (the feature only ever waits for the IdP): never "missing". */
  readonly optional?: boolean;
}

export type CapabilityId =
  | 'discovery'
  | 'pkce'
  | 'iss'
  | 'par'
  | 'client-auth'
  | 'id-token'
  | 'response-mode'
  | 'jar'
  | 'jar-encryption'
  | 'jarm'
  | 'jarm-encryption'
  | 'dpop'
  | 'mtls-binding'
  | 'mtls-aliases'
  | 'backchannel-logout'
  | 'registration';

const list = (v: unknown): string[] | undefined =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
const lacks = (v: unknown, value: string): boolean => !list(v)?.includes(value);

/**
 * Every capability check, each computed from the configuration and the IdP's metadata. The startup
 * check (missingCapabilities) and the compliance gate (`fapi-bff check`) both read this one list.
 *
 * @see RFC 8414 §2 (metadata names and defaults), FAPI 2.0 Security Profile §5.3.3
 *      (https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.3.3)
 */
export function capabilityChecks(config: BffConfig, md: IdpMetadata): CapabilityCheck[] {
  const checks: CapabilityCheck[] = [];
  const add = (c: CapabilityCheck) => checks.push(c);

  const discovery: string[] = [];
  const expectedIssuer = config.oidc.issuer.href.replace(/\/$/, '');
  const actual = typeof md.issuer === 'string' ? md.issuer.replace(/\/$/, '') : undefined;
  // The metadata `issuer` must be the identifier we discovered from (mix-up defence):
  // https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.3.3.1, https://www.rfc-editor.org/rfc/rfc8414#section-3.3.
  if (actual !== expectedIssuer)
    discovery.push(`issuer: metadata says ${JSON.stringify(md.issuer)}, expected ${expectedIssuer}`);
  if (typeof md.authorization_endpoint !== 'string' && !config.oidc.authorizationUrl)
    discovery.push('authorization_endpoint');
  if (typeof md.token_endpoint !== 'string' && !config.oidc.tokenUrl) discovery.push('token_endpoint');
  if (typeof md.jwks_uri !== 'string') discovery.push('jwks_uri (needed to verify ID token signatures)');
  const responseTypes = list(md.response_types_supported);
  if (responseTypes && !responseTypes.includes('code'))
    discovery.push('response_types_supported must include code');
  add({ id: 'discovery', enabled: true, gaps: discovery, startup: true });

  add({
    id: 'pkce',
    enabled: true,
    gaps: lacks(md.code_challenge_methods_supported, 'S256')
      ? ['code_challenge_methods_supported must include S256 (PKCE)']
      : [],
    startup: true,
  });
  // MS_BFF_ASSUME_ISS_PARAMETER: the callback requires and compares iss whatever the metadata says.
  add({
    id: 'iss',
    enabled: true,
    gaps:
      md.authorization_response_iss_parameter_supported !== true && !config.interop.assumeIssParameter
        ? [
            'authorization_response_iss_parameter_supported must be true (RFC 9207 mix-up defence; if the IdP sends iss anyway, see MS_BFF_ASSUME_ISS_PARAMETER)',
          ]
        : [],
    startup: true,
  });
  add({
    id: 'par',
    enabled: config.oidc.parEnabled,
    gaps:
      typeof md.pushed_authorization_request_endpoint !== 'string'
        ? ['pushed_authorization_request_endpoint (MS_BFF_PAR_ENABLED=true)']
        : [],
    startup: true,
  });

  // RFC 8414 §2: absent token_endpoint_auth_methods_supported means client_secret_basic only.
  const auth: string[] = [];
  const method = config.oidc.tokenAuthMethod;
  const methods = list(md.token_endpoint_auth_methods_supported) ?? ['client_secret_basic'];
  if (!methods.includes(method)) auth.push(`token_endpoint_auth_methods_supported must include ${method}`);
  if (method === 'private_key_jwt' && config.signingKey) {
    if (lacks(md.token_endpoint_auth_signing_alg_values_supported, config.signingKey.alg))
      auth.push(`token_endpoint_auth_signing_alg_values_supported must include ${config.signingKey.alg}`);
  }
  add({ id: 'client-auth', enabled: true, gaps: auth, startup: true });

  add({
    id: 'id-token',
    enabled: true,
    gaps: lacks(md.id_token_signing_alg_values_supported, config.oidc.idTokenAlg)
      ? [`id_token_signing_alg_values_supported must include ${config.oidc.idTokenAlg} (MS_BFF_ID_TOKEN_ALG)`]
      : [],
    startup: true,
  });

  // OIDC Discovery §3: response_modes_supported defaults to ["query", "fragment"].
  add({
    id: 'response-mode',
    enabled: !config.jarm.enabled && config.oidc.responseMode === 'form_post',
    gaps: lacks(md.response_modes_supported, 'form_post')
      ? ['response_modes_supported must include form_post (MS_BFF_RESPONSE_MODE)']
      : [],
    startup: true,
  });

  // JAR and JARM capabilities (RFC 8414 §2, JARM §4), only when the features are on.
  const jar: string[] = [];
  if (lacks(md.request_object_signing_alg_values_supported, config.jar.signingAlg))
    jar.push(
      `request_object_signing_alg_values_supported must include ${config.jar.signingAlg} (MS_BFF_JAR_ENABLED)`,
    );
  if (!config.oidc.parEnabled && md.request_parameter_supported !== true)
    jar.push('request_parameter_supported must be true (JAR without PAR sends request= inline)');
  add({ id: 'jar', enabled: config.jar.enabled, gaps: jar, startup: true });
  add({
    id: 'jar-encryption',
    enabled: config.jar.enabled && config.jar.encryption !== undefined,
    gaps: encryptionGaps(
      'request_object',
      md.request_object_encryption_alg_values_supported,
      md.request_object_encryption_enc_values_supported,
      config.jar.encryption,
    ),
    startup: true,
  });

  const jarm: string[] = [];
  if (lacks(md.response_modes_supported, config.jarm.mode))
    jarm.push(`response_modes_supported must include ${config.jarm.mode} (MS_BFF_JARM_MODE)`);
  const jarmAlgs = list(md.authorization_signing_alg_values_supported) ?? [];
  if (!config.jarm.algsAllowed.some((a) => jarmAlgs.includes(a)))
    jarm.push(
      `authorization_signing_alg_values_supported must include one of ${config.jarm.algsAllowed.join(', ')}`,
    );
  add({ id: 'jarm', enabled: config.jarm.enabled, gaps: jarm, startup: true });
  add({
    id: 'jarm-encryption',
    enabled: config.jarm.enabled && config.jarm.encryption !== undefined,
    gaps: encryptionGaps(
      'authorization',
      md.authorization_encryption_alg_values_supported,
      md.authorization_encryption_enc_values_supported,
      config.jarm.encryption,
    ),
    startup: true,
  });

  // RFC 9449 §5.1: the AS advertises the DPoP proof algs it accepts.
  add({
    id: 'dpop',
    enabled: config.oidc.dpopEnabled,
    gaps: lacks(md.dpop_signing_alg_values_supported, config.oidc.dpopAlg)
      ? [`dpop_signing_alg_values_supported must include ${config.oidc.dpopAlg} (MS_BFF_DPOP_ENABLED)`]
      : [],
    startup: false,
  });
  // RFC 8705 §3: routes with certificate-bound tokens need an IdP that binds them.
  add({
    id: 'mtls-binding',
    enabled: [...config.routes.values()].some((r) => r.mtls),
    gaps:
      md.tls_client_certificate_bound_access_tokens !== true
        ? ['tls_client_certificate_bound_access_tokens must be true (routes with mtls: true)']
        : [],
    startup: true,
  });
  // RFC 8705 §5: with a client certificate the BFF calls the IdP's mTLS endpoint aliases.
  const aliases = md.mtls_endpoint_aliases as Record<string, unknown> | undefined;
  add({
    id: 'mtls-aliases',
    enabled: config.tls.cert !== undefined,
    gaps:
      typeof aliases !== 'object' || aliases === null || typeof aliases.token_endpoint !== 'string'
        ? ['mtls_endpoint_aliases with a token_endpoint (RFC 8705 §5; used with MTLS_CERT)']
        : [],
    startup: false,
  });
  // OIDC Back-Channel Logout 1.0 §2.1: our receiver is always on; the IdP decides whether it calls.
  add({
    id: 'backchannel-logout',
    enabled: true,
    optional: true,
    gaps: [
      ...(md.backchannel_logout_supported !== true ? ['backchannel_logout_supported is not true'] : []),
      ...(md.backchannel_logout_session_supported !== true
        ? ['backchannel_logout_session_supported is not true (sid)']
        : []),
    ],
    startup: false,
  });
  // RFC 7591 §3: dynamic registration needs the IdP's registration endpoint.
  add({
    id: 'registration',
    enabled: config.oidc.registration !== undefined,
    gaps:
      typeof md.registration_endpoint !== 'string'
        ? ['registration_endpoint (RFC 7591; OIDC_CLIENT_REGISTRATION_FILE)']
        : [],
    startup: false,
  });
  return checks;
}

function encryptionGaps(
  prefix: 'request_object' | 'authorization',
  algs: unknown,
  encs: unknown,
  configured: { alg: string; enc: string } | undefined,
): string[] {
  const gaps: string[] = [];
  // Not configured: "available" means the IdP offers any alg/enc we would accept.
  const wantAlgs = configured ? [configured.alg] : [...JWE_ALGS];
  const wantEncs = configured ? [configured.enc] : [...JWE_ENCS];
  if (!wantAlgs.some((a) => list(algs)?.includes(a)))
    gaps.push(`${prefix}_encryption_alg_values_supported must include ${wantAlgs.join(' or ')}`);
  if (!wantEncs.some((e) => list(encs)?.includes(e)))
    gaps.push(`${prefix}_encryption_enc_values_supported must include ${wantEncs.join(' or ')}`);
  return gaps;
}
