import type { IdpPreset } from './enums.js';

/**
 * Per-IdP presets (MS_BFF_IDP_PRESET): the interop switches and defaults a known IdP needs, each with
 * the public source that justifies it. A preset fills in only variables the operator left unset, and
 * never acknowledges a weakening: in production the operator still names each weakening switch in
 * MS_BFF_ACKNOWLEDGE_WEAKENED. docs/interop/presets.md is generated from this table.
 */
export type PresetName = IdpPreset;

export interface Preset {
  readonly title: string;
  /** Variable → value, applied under the operator's own settings. */
  readonly settings: Readonly<Record<string, string>>;
  /** Variable → why, with the public source (vendor documentation or source code). */
  readonly reasons: Readonly<Record<string, string>>;
  /**
   * What the operator must still do at the IdP, or what the preset deliberately leaves alone because
   * changing it would weaken the profile; each with its public source.
   */
  readonly notes: readonly string[];
  /** Where the IdP's behaviour is documented. */
  readonly documentation: readonly string[];
}

export const PRESETS: Readonly<Record<PresetName, Preset>> = {
  'oidc-provider': {
    title: 'panva/oidc-provider (FAPI 2.0 profile)',
    settings: {},
    reasons: {},
    notes: [],
    documentation: ['https://github.com/panva/node-oidc-provider/blob/main/docs/README.md'],
  },
  glewlwyd: {
    title: 'Glewlwyd 2.7',
    settings: {
      MS_BFF_CLIENT_ASSERTION_AUD: 'endpoint',
      MS_BFF_ASSUME_ISS_PARAMETER: 'true',
      MS_BFF_JARM_MAX_LIFETIME_SECONDS: '3600',
      MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP: 'false',
    },
    reasons: {
      MS_BFF_CLIENT_ASSERTION_AUD:
        'Glewlwyd compares a client assertion aud with "<plugin URL>/<endpoint>" only (validate_jwt_assertion_request, src/plugin/protocol_oidc.c): https://github.com/babelouest/glewlwyd/blob/v2.7.5/src/plugin/protocol_oidc.c',
      MS_BFF_ASSUME_ISS_PARAMETER:
        'Glewlwyd sends iss in authorization responses but its discovery document has no authorization_response_iss_parameter_supported: https://github.com/babelouest/glewlwyd/blob/v2.7.5/docs/OIDC.md',
      MS_BFF_JARM_MAX_LIFETIME_SECONDS:
        'Glewlwyd JARM responses expire with the access token duration (access-token-duration, 3600 s by default): https://github.com/babelouest/glewlwyd/blob/v2.7.5/docs/OIDC.md',
      MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP:
        'Glewlwyd back-channel logout tokens carry iat and jti but no exp: https://github.com/babelouest/glewlwyd/blob/v2.7.5/src/plugin/protocol_oidc.c',
    },
    notes: [],
    documentation: [
      'https://github.com/babelouest/glewlwyd/blob/v2.7.5/docs/OIDC.md',
      'docs/interop/glewlwyd.md',
    ],
  },
  keycloak: {
    title: 'Keycloak',
    settings: {},
    reasons: {},
    notes: [
      'No switch needed: the published document advertises RFC 9207 (authorization_response_iss_parameter_supported), PAR, private_key_jwt with ES256/PS256, PS256 ID tokens, DPoP, JAR and JARM (docs/interop/discovery/keycloak.json, a Keycloak response kept by https://github.com/eu-digital-identity-wallet/eudi-lib-jvm-openid4vci-kt).',
      'At the IdP: Keycloak checks FAPI 2.0 for a client only when a realm client policy links it to one of the built-in global client profiles fapi-2-security-profile, fapi-2-dpop-security-profile, fapi-2-message-signing or fapi-2-dpop-message-signing (Securing Applications guide, FAPI support, "FAPI client profiles": https://www.keycloak.org/securing-apps/oidc-layers; read here in the Red Hat build of Keycloak 26.4 edition, section 2.4.1: https://docs.redhat.com/ja/documentation/red_hat_build_of_keycloak/26.4/html/securing_applications_and_services_guide/oidc-layers-_fapi-support).',
      "At the IdP: make the client's ID token signature algorithm the one the BFF pins (MS_BFF_ID_TOKEN_ALG, PS256 by default); RS256 is refused (FAPI 2.0 Security Profile §5.4).",
    ],
    documentation: [
      'https://www.keycloak.org/securing-apps/oidc-layers',
      'https://www.keycloak.org/docs/latest/server_admin/index.html#_client_policies',
    ],
  },
  okta: {
    title: 'Okta (custom authorization server)',
    settings: {},
    reasons: {},
    notes: [],
    documentation: ['https://developer.okta.com/docs/reference/api/oidc/'],
  },
  auth0: {
    title: 'Auth0',
    settings: { BFF_JWT_SIGNING_ALG: 'PS256' },
    reasons: {
      BFF_JWT_SIGNING_ALG:
        'Auth0 accepts private_key_jwt assertions signed with the alg of the credential registered for the application, one of RS256, RS384 and PS256 (its discovery document: token_endpoint_auth_signing_alg_values_supported; "The algorithm must match the algorithm specified when you created your application credential": https://auth0.com/docs/get-started/authentication-and-authorization-flow/authenticate-with-private-key-jwt), and its FAPI compliance levels require request objects signed with PS256 (https://auth0.com/docs/get-started/applications/configure-fapi-compliance). PS256 is the one FAPI 2.0 alg of the three: BFF_JWT_SIGNING_KEY must be an RSA key, and an EC key is refused at startup instead of at the first login.',
    },
    notes: [
      'Not set: MS_BFF_ASSUME_ISS_PARAMETER. The published document does not advertise RFC 9207 (https://www.rfc-editor.org/rfc/rfc9207#section-3), so the capability check refuses to start; the switch is only honest for an IdP known to send iss in every authorization response, and no Auth0 documentation found here says Auth0 does.',
      "At the IdP: Auth0's FAPI compliance levels (which require PAR, and JAR signed with PS256) are Highly Regulated Identity features, an Enterprise plan add-on (https://auth0.com/docs/get-started/applications/configure-fapi-compliance); PAR is configured per application (https://auth0.com/docs/get-started/applications/configure-par). The published sample has no PAR endpoint.",
    ],
    documentation: [
      'https://auth0.com/docs/get-started/applications/configure-fapi-compliance',
      'https://auth0.com/docs/get-started/applications/configure-applications-with-oidc-discovery',
    ],
  },
  ping: {
    title: 'PingFederate / PingOne Advanced Identity Cloud',
    settings: {},
    reasons: {},
    notes: [
      'No switch set: the part of the published example that could be read gives no reason for one; the committed document is partial (see its notes), so most verdicts below are "absent from what could be read", not "unsupported" (https://docs.pingidentity.com/pingfederate/latest/developers_reference_guide/pf_openid_provider_config_endpoint.html).',
    ],
    documentation: [
      'https://docs.pingidentity.com/pingfederate/latest/developers_reference_guide/pf_openid_provider_config_endpoint.html',
      'https://docs.pingidentity.com/pingoneaic/am-oidc1/rest-api-oidc-discovery-configuration.html',
    ],
  },
  curity: {
    title: 'Curity Identity Server',
    settings: {},
    reasons: {},
    notes: [
      "No switch needed in what could be read: Curity's example metadata advertises RFC 9207 (authorization_response_iss_parameter_supported: true) and a PAR endpoint (https://curity.io/docs/idsvr/latest/token-service-admin-guide/metadata.html).",
      'At the IdP: the metadata endpoint is disabled by default; turn on expose-metadata in the token service, or the BFF cannot discover it (https://curity.io/docs/idsvr/latest/token-service-admin-guide/metadata.html).',
    ],
    documentation: [
      'https://curity.io/docs/idsvr/latest/token-service-admin-guide/metadata.html',
      'https://curity.io/docs/idsvr/latest/token-service-admin-guide/fapi.html',
    ],
  },
  entra: {
    title: 'Microsoft Entra ID (v2.0 endpoints)',
    settings: {},
    reasons: {},
    notes: [
      'Not set, because each would weaken the profile: the document signs ID tokens with RS256 only (FAPI 2.0 Security Profile §5.4 allows PS256, ES256, EdDSA), has no PAR endpoint (§5.3.2.2 requires PAR) and does not advertise RFC 9207 or PKCE. Entra ID as published cannot serve as a FAPI 2.0 authorization server for this BFF; the check says so instead of a preset hiding it.',
    ],
    documentation: ['https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc'],
  },
};
