import type { X509Certificate } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type {
  Account,
  ClientMetadata,
  Configuration,
  JWKS,
  KoaContextWithOIDC,
  ResourceServer,
  errors as OidcErrors,
} from 'oidc-provider';
import { JWE_ALGS, JWE_ENCS } from '../../config/enums.js';
import { certificateMatches, type MtlsAliasedEndpoint } from './mtls.js';
import type { DevIdpOptions, DevIdpUser } from './options.js';
import { escapeHtml, PAGE_CSP, page, TITLE } from './pages.js';
import { CLIENT_SIGNING_ALGS, loopbackFriendlyFetch, SIGNING_ALGS } from './runtime.js';

/** The `acr` of a password login at the development IdP. */
export const DEV_PASSWORD_ACR = 'urn:fapi-bff:dev:pwd';

export interface ConfigurationInputs {
  readonly options: DevIdpOptions;
  readonly users: readonly DevIdpUser[];
  readonly jwks: JWKS;
  readonly errors: typeof OidcErrors;
  readonly accessTokenTtl: number;
  readonly refreshTokenTtl: number;
  readonly mtlsEndpointAliases: Record<MtlsAliasedEndpoint, string> | undefined;
  /** The client certificate of this request, when it counts (see DevIdpOptions.mtls). */
  readonly mtlsCertificate: (ctx: KoaContextWithOIDC) => X509Certificate | undefined;
}

/**
 * oidc-provider's configuration for a FAPI 2.0 authorization server
 * (https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.3.2): PAR, PKCE S256,
 * PS256/ES256 only, JARM, DPoP, optional encryption, mTLS and resource indicators.
 */
export function providerConfiguration(inputs: ConfigurationInputs): Configuration {
  const {
    options,
    users,
    jwks,
    errors,
    accessTokenTtl,
    refreshTokenTtl,
    mtlsEndpointAliases,
    mtlsCertificate,
  } = inputs;
  const findUser = (id: string) => users.find((u) => u.id === id);

  const resourceScope = options.resourceScope ?? 'api:read';
  const resourceIndicators: NonNullable<Configuration['features']>['resourceIndicators'] =
    options.resourceAudience === undefined
      ? { enabled: false }
      : {
          enabled: true,
          // Several resources asked for at authorization (RFC 8707 §2.1) and none at the token
          // endpoint: the default audience if it is among them, else the first.
          defaultResource: (_ctx, _client, oneOf) =>
            oneOf === undefined
              ? options.resourceAudience
              : oneOf.includes(options.resourceAudience as string)
                ? options.resourceAudience
                : oneOf[0],
          // The access token goes to the API even though `openid` was asked for: the BFF takes
          // user claims from the ID token, not from userinfo.
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, resourceIndicator): ResourceServer => {
            if (
              resourceIndicator !== options.resourceAudience &&
              !(options.moreResourceAudiences ?? []).includes(resourceIndicator)
            )
              throw new errors.InvalidTarget();
            return {
              scope: resourceScope,
              audience: resourceIndicator,
              accessTokenTTL: accessTokenTtl,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'PS256' } },
            };
          },
        };

  return {
    clients: options.clients as unknown as ClientMetadata[],
    jwks,
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      // Distinct names: on 127.0.0.1 a browser shares cookies between ports, so the IdP's
      // cookies must not collide with the BFF's.
      names: { session: 'devidp_session', interaction: 'devidp_interaction', resume: 'devidp_resume' },
    },
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'private_key_jwt',
      id_token_signed_response_alg: 'PS256',
      authorization_signed_response_alg: 'PS256',
    },
    enabledJWA: {
      clientAuthSigningAlgValues: [...CLIENT_SIGNING_ALGS],
      idTokenSigningAlgValues: [...SIGNING_ALGS],
      requestObjectSigningAlgValues: [...CLIENT_SIGNING_ALGS],
      userinfoSigningAlgValues: [...SIGNING_ALGS],
      introspectionSigningAlgValues: [...SIGNING_ALGS],
      authorizationSigningAlgValues: [...SIGNING_ALGS],
      // Ed25519: openid-client names EdDSA proofs by RFC 9864's fully-specified alg.
      dPoPSigningAlgValues: ['ES256', 'PS256', 'EdDSA', 'Ed25519'],
      authorizationEncryptionAlgValues: [...JWE_ALGS],
      authorizationEncryptionEncValues: [...JWE_ENCS],
      requestObjectEncryptionAlgValues: [...JWE_ALGS],
      requestObjectEncryptionEncValues: [...JWE_ENCS],
    },
    // OIDC Core §2: the one authentication context this IdP offers (password), so step-up tests can
    // ask for it and for one it cannot satisfy.
    acrValues: [DEV_PASSWORD_ACR],
    claims: {
      acr: null,
      sid: null,
      auth_time: null,
      iss: null,
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username', 'updated_at'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    // FAPI 2.0 Security Profile §5.3.2.2: only the authorization code flow.
    responseTypes: ['code'],
    // Confidential clients only. client_secret_* stay available for the BFF's non-production modes.
    clientAuthMethods: [
      'private_key_jwt',
      'client_secret_basic',
      'client_secret_post',
      ...(options.mtls?.tlsClientAuth ? (['tls_client_auth'] as const) : []),
      ...(options.mtls?.selfSignedTlsClientAuth ? (['self_signed_tls_client_auth'] as const) : []),
    ],
    ...(mtlsEndpointAliases ? { discovery: { mtls_endpoint_aliases: mtlsEndpointAliases } } : {}),
    // Scope-requested claims go into the ID token too, not only to userinfo (OIDC Core §5.4 allows
    // both): the BFF builds its session from the ID token.
    conformIdTokenClaims: false,
    findAccount: (_ctx, sub): Account | undefined => {
      const user = findUser(sub);
      if (!user) return undefined;
      return { accountId: user.id, claims: () => ({ ...user.claims, sub: user.id }) };
    },
    features: {
      fapi: { enabled: true, profile: '2.0' },
      devInteractions: { enabled: false },
      pushedAuthorizationRequests: {
        enabled: true,
        requirePushedAuthorizationRequests: options.requirePar ?? true,
      },
      requestObjects: { enabled: true, requireSignedRequestObject: false },
      jwtResponseModes: { enabled: true },
      encryption: { enabled: options.encryption ?? false },
      // RFC 9449 §8: with requireNonce, every first PAR and token call gets 400 use_dpop_nonce.
      dPoP: {
        enabled: true,
        nonceSecret: randomBytes(32),
        requireNonce: () => options.dpop?.requireNonce ?? false,
      },
      revocation: {
        enabled: true,
        // Only the client a token was issued to may revoke it (RFC 7009 §2.1).
        allowedPolicy: (_ctx, client, token) => {
          if (token.clientId !== client.clientId) {
            throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
          }
          return true;
        },
      },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx: KoaContextWithOIDC, form: string) => {
          const withButtons = form.replace(
            '</form>',
            '<button type="submit" name="logout" value="yes" id="logout-yes">Yes, sign me out</button>' +
              '<button type="submit" id="logout-no">No, stay signed in</button></form>',
          );
          ctx.type = 'html';
          ctx.set('Content-Security-Policy', PAGE_CSP);
          ctx.body = page('Sign out?', `<p>Do you want to sign out of the ${TITLE}?</p>${withButtons}`);
        },
        postLogoutSuccessSource: (ctx: KoaContextWithOIDC) => {
          ctx.type = 'html';
          ctx.set('Content-Security-Policy', PAGE_CSP);
          ctx.body = page('Signed out', '<p id="signed-out">You are signed out.</p>');
        },
      },
      backchannelLogout: { enabled: true },
      registration: options.registration
        ? { enabled: true, initialAccessToken: options.registration.initialAccessToken ?? false }
        : { enabled: false },
      registrationManagement: {
        enabled: options.registration !== undefined,
        rotateRegistrationAccessToken: true,
      },
      // RFC 6749 §4.4, for the BFF's own tokens (routes with token "client" / "user-or-client");
      // only clients whose grant_types include client_credentials may use it.
      clientCredentials: { enabled: true },
      resourceIndicators,
      // RFC 8705; off (oidc-provider's default) without the mtls option.
      mTLS: options.mtls
        ? {
            enabled: true,
            tlsClientAuth: options.mtls.tlsClientAuth ?? false,
            selfSignedTlsClientAuth: options.mtls.selfSignedTlsClientAuth ?? false,
            certificateBoundAccessTokens: options.mtls.certificateBoundAccessTokens ?? false,
            // PEM of the certificate presented on this connection (on the alias port only, unless
            // certificatesOnIssuerPort); undefined when none was.
            getCertificate: (ctx) => mtlsCertificate(ctx)?.toString(),
            // Chains to `tls.ca`: Node's TLS layer checked it against the server's `ca`.
            certificateAuthorized: (ctx) =>
              mtlsCertificate(ctx) !== undefined && (ctx.req.socket as TLSSocket).authorized,
            certificateSubjectMatches: (ctx, property, expected) => {
              const cert = mtlsCertificate(ctx);
              return cert !== undefined && certificateMatches(cert, property, expected);
            },
          }
        : { enabled: false },
      // Only with mtls (so the aliases cover it). RFC 7662 §2.1: the protected resource introspects
      // tokens issued to other clients; `introspectors` names the resource clients allowed to.
      introspection: {
        enabled: options.mtls !== undefined,
        allowedPolicy: (_ctx, client, token) =>
          token.clientId === client.clientId || (options.introspectors ?? []).includes(client.clientId),
      },
    },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.set('Content-Security-Policy', PAGE_CSP);
      const rows = Object.entries(out)
        .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd><code>${escapeHtml(v)}</code></dd>`)
        .join('');
      ctx.body = page('Error', `<dl id="error">${rows}</dl>`);
    },
    pkce: {
      // FAPI 2.0 Security Profile §5.3.2.2: PKCE with S256 for every request; oidc-provider 9 knows
      // no other method.
      required: () => true,
    },
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // FAPI 2.0 Security Profile §5.3.2.1 advises against rotation, but many IdPs rotate anyway and
    // the BFF must cope, so the dev IdP always rotates (and revokes the grant on reuse).
    rotateRefreshToken: true,
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
      AuthorizationCode: 60,
      ClientCredentials: accessTokenTtl,
      IdToken: 600,
      Interaction: 600,
      RefreshToken: refreshTokenTtl,
      Session: refreshTokenTtl,
      Grant: refreshTokenTtl,
      BackchannelAuthenticationRequest: 600,
      DeviceCode: 600,
    },
    fetch: loopbackFriendlyFetch,
  };
}
