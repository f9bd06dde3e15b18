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
  /** Where the IdP's behaviour is documented. */
  readonly documentation: readonly string[];
}

export const PRESETS: Readonly<Record<PresetName, Preset>> = {
  'oidc-provider': {
    title: 'panva/oidc-provider (FAPI 2.0 profile)',
    settings: {},
    reasons: {},
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
    documentation: [
      'https://github.com/babelouest/glewlwyd/blob/v2.7.5/docs/OIDC.md',
      'docs/interop/glewlwyd.md',
    ],
  },
  keycloak: {
    title: 'Keycloak',
    settings: {},
    reasons: {},
    documentation: ['https://www.keycloak.org/docs/latest/securing_apps/index.html'],
  },
  okta: {
    title: 'Okta (custom authorization server)',
    settings: {},
    reasons: {},
    documentation: ['https://developer.okta.com/docs/reference/api/oidc/'],
  },
  auth0: {
    title: 'Auth0',
    settings: {},
    reasons: {},
    documentation: ['https://auth0.com/docs/get-started/applications/configure-fapi-compliance'],
  },
  ping: {
    title: 'PingFederate / PingOne Advanced Identity Cloud',
    settings: {},
    reasons: {},
    documentation: [
      'https://docs.pingidentity.com/pingoneaic/am-oidc1/rest-api-oidc-discovery-configuration.html',
    ],
  },
  curity: {
    title: 'Curity Identity Server',
    settings: {},
    reasons: {},
    documentation: ['https://curity.io/docs/idsvr/latest/token-service-admin-guide/fapi.html'],
  },
  entra: {
    title: 'Microsoft Entra ID (v2.0 endpoints)',
    settings: {},
    reasons: {},
    documentation: ['https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc'],
  },
};
