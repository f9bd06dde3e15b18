import { fileURLToPath } from 'node:url';
import { exportJWK, generateKeyPair } from 'jose';
import { type DemoApi, startDemoApi } from './demo-api.js';
import { type DevIdp, startDevIdp } from './idp.js';

export const DEV_CLIENT_ID = 'fapi-bff-dev';

export interface DevSetup {
  /** Variables to lay under the real environment (which wins). */
  env: Record<string, string>;
  idp: DevIdp;
  api: DemoApi;
  close(): Promise<void>;
}

/**
 * Development mode: with no OIDC_ISSUER, start an embedded FAPI 2.0 IdP (oidc-provider), a demo API
 * and register the BFF as a private_key_jwt client with a key generated for this run. The BFF then
 * runs through exactly the same configuration path as in production.
 */
export async function startDevSetup(publicUrl: string): Promise<DevSetup> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = 'dev-client-key';
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const audience = 'urn:fapi-bff:demo-api';
  const idp = await startDevIdp({
    clients: [
      {
        client_id: DEV_CLIENT_ID,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        id_token_signed_response_alg: 'PS256',
        jwks: { keys: [publicJwk] },
        redirect_uris: [new URL('/auth/callback', publicUrl).href],
        post_logout_redirect_uris: [new URL('/', publicUrl).href],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        // OIDC Back-Channel Logout 1.0 §2.2: the IdP tells the BFF when the user signs out at the IdP
        // (the demo SPA's "log out everywhere").
        backchannel_logout_uri: new URL('/auth/backchannel-logout', publicUrl).href,
        backchannel_logout_session_required: true,
      },
    ],
    resourceAudience: audience,
  });
  const api = await startDemoApi({ issuer: idp.issuer, audience });
  return {
    env: {
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: DEV_CLIENT_ID,
      // api:read is the demo API's scope (startDevIdp's default resourceScope): least privilege, FAPI 2.0 §5.3.3.1-13.
      OIDC_SCOPES: 'openid profile email offline_access api:read',
      BFF_JWT_SIGNING_KEY: JSON.stringify(privateJwk),
      MS_BFF_PROFILE: 'development',
      MS_BFF_PUBLIC_URL: publicUrl,
      MS_BFF_ROUTES: JSON.stringify({ demo: api.url }),
      // The demo SPA, served from its directory like any built SPA (src/spa/; this file runs as
      // dist/src/dev/dev-setup.js, and demo/ ships in the package).
      MS_BFF_STATIC_DIR: fileURLToPath(new URL('../../../demo/spa/', import.meta.url)),
      // The demo shows FAPI 2.0 with its options on: signed request objects (RFC 9101), signed
      // authorization responses (JARM) and DPoP-bound tokens (RFC 9449). Each can be switched off
      // through the environment, which wins.
      MS_BFF_JAR_ENABLED: 'true',
      MS_BFF_JARM_ENABLED: 'true',
      MS_BFF_DPOP_ENABLED: 'true',
      // Readable one-line logs of logins, refreshes, proxied calls and logouts in the terminal.
      MS_BFF_LOG_FORMAT: 'pretty',
      MS_BFF_ACCESS_LOG: 'true',
    },
    idp,
    api,
    async close() {
      await Promise.allSettled([api.close(), idp.close()]);
    },
  };
}
