/**
 * The closed sets of values the configuration accepts. Each list exists once: the variable
 * declarations (variables.ts), the config types (types.ts) and the protocol code all use these.
 */

export const PROFILES = ['production', 'development'] as const;
export type Profile = (typeof PROFILES)[number];

/** Client authentication at the token endpoint (OpenID Connect Core §9, RFC 8705 §2). */
export const TOKEN_AUTH_METHODS = [
  'private_key_jwt',
  'client_secret_basic',
  'client_secret_post',
  'tls_client_auth',
  'self_signed_tls_client_auth',
] as const;
export type TokenAuthMethod = (typeof TOKEN_AUTH_METHODS)[number];

/**
 * Algorithms for every JWT the client creates or accepts
 * (https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.4.1).
 */
export const FAPI_ALGS = ['PS256', 'ES256', 'EdDSA'] as const;
export type FapiAlg = (typeof FAPI_ALGS)[number];

/** Algorithms of the keys the BFF signs with (client assertions, request objects, DPoP proofs). */
/** Our signing algs (client assertions, request objects): FAPI 2.0 Security Profile §5.4.1. */
export const SIGNING_ALGS = ['PS256', 'ES256', 'EdDSA'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/**
 * Key-management algorithms accepted for request objects and JARM responses: RSA-OAEP-256 and
 * ECDH-ES only (RSA1_5 and RSA-OAEP with SHA-1 are refused, https://www.rfc-editor.org/rfc/rfc8725#section-3.2).
 */
export const JWE_ALGS = ['RSA-OAEP-256', 'ECDH-ES', 'ECDH-ES+A256KW'] as const;
export type JweAlg = (typeof JWE_ALGS)[number];
export const JWE_ENCS = ['A256GCM', 'A256CBC-HS512'] as const;
export type JweEnc = (typeof JWE_ENCS)[number];

/** JARM response modes (https://openid.net/specs/oauth-v2-jarm-final.html#section-2.3). */
export const JARM_MODES = ['jwt', 'query.jwt', 'fragment.jwt', 'form_post.jwt'] as const;
export type JarmMode = (typeof JARM_MODES)[number];

/**
 * Plain (non-JARM) response modes: the default `query`, and `form_post`
 * (https://openid.net/specs/oauth-v2-form-post-response-mode-1_0.html).
 */
/**
 * Authorization request parameters an SPA may pass through /auth/login (OIDC Core §3.1.2.1), when the
 * frontend allows them: step-up (acr_values, max_age; RFC 9470 §4) and silent checks (prompt).
 */
export const LOGIN_PARAMETERS = ['acr_values', 'max_age', 'prompt'] as const;
export type LoginParameter = (typeof LOGIN_PARAMETERS)[number];

/** OIDC Core §3.1.2.1 prompt values; `none` with no other value (§3.1.2.1: none with others is an error). */
export const PROMPT_VALUES = ['none', 'login', 'consent', 'select_account'] as const;

export const RESPONSE_MODES = ['query', 'form_post'] as const;
export type ResponseMode = (typeof RESPONSE_MODES)[number];

export const SAME_SITE_VALUES = ['lax', 'strict'] as const;
export type SameSite = (typeof SAME_SITE_VALUES)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** MS_BFF_LOG_FORMAT: pino JSON lines, or readable one-line logs for a terminal. */
export const LOG_FORMATS = ['json', 'pretty'] as const;

/** MS_BFF_AUDIT_SUB: how audit lines show the subject. */
export const AUDIT_SUB_FORMATS = ['plain', 'hash'] as const;

/**
 * What a route sends upstream (Duende BFF's RequiredTokenType): the user's access token (a session
 * is required), the BFF's own client-credentials token, the user's if signed in else the client's,
 * the user's if signed in else nothing, or nothing.
 */
export const TOKEN_POLICIES = ['user', 'client', 'user-or-client', 'user-or-none', 'none'] as const;
export type TokenPolicy = (typeof TOKEN_POLICIES)[number];

/** How service callers' access tokens are checked: as a JWT against the IdP's JWKS, or RFC 7662. */
export const SERVICE_TOKEN_CHECKS = ['jwt', 'introspection'] as const;
export type ServiceTokenCheck = (typeof SERVICE_TOKEN_CHECKS)[number];

/** Known IdPs with a preset (MS_BFF_IDP_PRESET, src/config/presets.ts). */
export const IDP_PRESETS = [
  'oidc-provider',
  'glewlwyd',
  'keycloak',
  'okta',
  'auth0',
  'ping',
  'curity',
  'entra',
] as const;
export type IdpPreset = (typeof IDP_PRESETS)[number];

/**
 * The aud of private_key_jwt client assertions: the issuer
 * (https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.3.2.1) or the URL of the
 * endpoint called (https://www.rfc-editor.org/rfc/rfc7523#section-3), an interop tolerance.
 */
export const CLIENT_ASSERTION_AUDS = ['issuer', 'endpoint'] as const;
export type ClientAssertionAud = (typeof CLIENT_ASSERTION_AUDS)[number];
