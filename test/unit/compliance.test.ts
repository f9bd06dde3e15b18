/**
 * The compliance gate (`fapi-bff check`): every row computed from configuration and IdP metadata,
 * and every capability check failing its row with crippled metadata. The full metadata below is
 * what a FAPI 2.0 IdP with every feature publishes; each case removes or changes one member.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import { complianceMatrix, type MatrixRow } from '../../src/cli/compliance.js';
import { loadConfig } from '../../src/config/load.js';
import type { IdpMetadata } from '../../src/oauth/capabilities.js';
import { missingCapabilities } from '../../src/oauth/capabilities.js';

const ISSUER = 'https://idp.example.com';

function fullMetadata(): Record<string, unknown> {
  return {
    issuer: ISSUER,
    authorization_endpoint: `${ISSUER}/auth`,
    token_endpoint: `${ISSUER}/token`,
    jwks_uri: `${ISSUER}/jwks`,
    registration_endpoint: `${ISSUER}/reg`,
    pushed_authorization_request_endpoint: `${ISSUER}/par`,
    response_types_supported: ['code'],
    response_modes_supported: ['query', 'form_post', 'jwt', 'query.jwt', 'form_post.jwt'],
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
    token_endpoint_auth_methods_supported: ['private_key_jwt', 'tls_client_auth'],
    token_endpoint_auth_signing_alg_values_supported: ['ES256', 'PS256'],
    id_token_signing_alg_values_supported: ['PS256', 'ES256'],
    request_object_signing_alg_values_supported: ['ES256', 'PS256'],
    request_object_encryption_alg_values_supported: ['RSA-OAEP-256'],
    request_object_encryption_enc_values_supported: ['A256GCM'],
    authorization_signing_alg_values_supported: ['PS256', 'ES256'],
    authorization_encryption_alg_values_supported: ['RSA-OAEP-256'],
    authorization_encryption_enc_values_supported: ['A256GCM'],
    dpop_signing_alg_values_supported: ['ES256', 'PS256'],
    tls_client_certificate_bound_access_tokens: true,
    mtls_endpoint_aliases: { token_endpoint: 'https://mtls.idp.example.com/token' },
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
  };
}

async function keys() {
  const sig = await generateKeyPair('ES256', { extractable: true });
  const enc = await generateKeyPair('RSA-OAEP-256', { extractable: true, modulusLength: 2048 });
  const encPub = await generateKeyPair('RSA-OAEP-256', { extractable: true, modulusLength: 2048 });
  return {
    sig: JSON.stringify({ ...(await exportJWK(sig.privateKey)), alg: 'ES256', kid: 's' }),
    enc: JSON.stringify({ ...(await exportJWK(enc.privateKey)), alg: 'RSA-OAEP-256', kid: 'e' }),
    idpEnc: JSON.stringify({
      ...(await exportJWK(encPub.publicKey)),
      alg: 'RSA-OAEP-256',
      kid: 'i',
      use: 'enc',
    }),
  };
}

async function config(extra: Record<string, string>) {
  const k = await keys();
  return loadConfig({
    OIDC_ISSUER: ISSUER,
    OIDC_CLIENT_ID: 'bff',
    MS_BFF_PUBLIC_URL: 'https://app.example.com',
    MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
    BFF_JWT_SIGNING_KEY: k.sig,
    MS_BFF_ROUTES: '{}',
    ...(extra.MS_BFF_JARM_ENC_ALG ? { BFF_JARM_PRIV_KEY: k.enc } : {}),
    ...(extra.MS_BFF_JAR_ENC_ALG ? { BFF_JAR_ENC_KEY: k.idpEnc } : {}),
    ...extra,
  });
}

const row = (rows: MatrixRow[], requirement: string) => {
  const r = rows.find((x) => x.requirement === requirement);
  assert.ok(r, `row ${requirement}`);
  return r;
};

const EVERYTHING = {
  MS_BFF_DPOP_ENABLED: 'true',
  MS_BFF_JAR_ENABLED: 'true',
  MS_BFF_JAR_ENC_ALG: 'RSA-OAEP-256',
  MS_BFF_JARM_ENABLED: 'true',
  MS_BFF_JARM_MODE: 'query.jwt',
  MS_BFF_JARM_ENC_ALG: 'RSA-OAEP-256',
};

describe('compliance gate', () => {
  it('reports every row enabled or available against complete metadata, and the gate passes', async () => {
    const rows = complianceMatrix(await config(EVERYTHING), fullMetadata() as IdpMetadata);
    for (const r of rows)
      assert.ok(
        ['enabled', 'available', 'not-configured'].includes(r.status),
        `${r.requirement}: ${r.status}`,
      );
    assert.equal(row(rows, 'Sender constraint: DPoP').status, 'enabled');
    assert.equal(row(rows, 'JARM encryption').status, 'enabled');
    assert.equal(row(rows, 'Sender constraint: mTLS').status, 'available');
    assert.equal(row(rows, 'Back-channel logout').status, 'enabled');
    assert.equal(row(rows, 'FIPS mode').status, 'not-configured');
    assert.ok(!rows.some((r) => r.status === 'missing'));
  });

  it('reports a feature that is off as available or not-configured, never missing', async () => {
    const md = fullMetadata();
    delete md.dpop_signing_alg_values_supported;
    const rows = complianceMatrix(await config({}), md as IdpMetadata);
    assert.equal(row(rows, 'Sender constraint: DPoP').status, 'not-configured');
    assert.equal(row(rows, 'JAR (signed request objects)').status, 'available');
    assert.ok(!rows.some((r) => r.status === 'missing'));
  });

  // Each capability check, failed by crippling one metadata member, with the flag that needs it.
  const cases: {
    name: string;
    requirement: string;
    env?: Record<string, string>;
    cripple: (md: Record<string, unknown>) => void;
    startup: boolean;
  }[] = [
    {
      name: 'PAR endpoint',
      requirement: 'PAR',
      cripple: (md) => delete md.pushed_authorization_request_endpoint,
      startup: true,
    },
    {
      name: 'PKCE S256',
      requirement: 'PKCE S256',
      cripple: (md) => (md.code_challenge_methods_supported = ['plain']),
      startup: true,
    },
    {
      name: 'RFC 9207 iss parameter',
      requirement: 'RFC 9207 iss',
      cripple: (md) => delete md.authorization_response_iss_parameter_supported,
      startup: true,
    },
    {
      name: 'auth method',
      requirement: 'Client authentication',
      cripple: (md) => (md.token_endpoint_auth_methods_supported = ['client_secret_basic']),
      startup: true,
    },
    {
      name: 'auth signing alg',
      requirement: 'Client authentication',
      cripple: (md) => (md.token_endpoint_auth_signing_alg_values_supported = ['PS256']),
      startup: true,
    },
    {
      name: 'ID token alg',
      requirement: 'ID token signature',
      cripple: (md) => (md.id_token_signing_alg_values_supported = ['RS256']),
      startup: true,
    },
    {
      name: 'issuer',
      requirement: 'Discovery metadata',
      cripple: (md) => (md.issuer = 'https://evil.example.com'),
      startup: true,
    },
    {
      name: 'JAR alg',
      requirement: 'JAR (signed request objects)',
      env: { MS_BFF_JAR_ENABLED: 'true' },
      cripple: (md) => (md.request_object_signing_alg_values_supported = ['RS256']),
      startup: true,
    },
    {
      name: 'JAR encryption alg',
      requirement: 'JAR encryption',
      env: { MS_BFF_JAR_ENABLED: 'true', MS_BFF_JAR_ENC_ALG: 'RSA-OAEP-256' },
      cripple: (md) => (md.request_object_encryption_alg_values_supported = ['RSA1_5']),
      startup: true,
    },
    {
      name: 'JAR encryption enc',
      requirement: 'JAR encryption',
      env: { MS_BFF_JAR_ENABLED: 'true', MS_BFF_JAR_ENC_ALG: 'RSA-OAEP-256' },
      cripple: (md) => (md.request_object_encryption_enc_values_supported = ['A128CBC-HS256']),
      startup: true,
    },
    {
      name: 'JARM response mode',
      requirement: 'JARM',
      env: { MS_BFF_JARM_ENABLED: 'true', MS_BFF_JARM_MODE: 'query.jwt' },
      cripple: (md) => (md.response_modes_supported = ['query', 'jwt']),
      startup: true,
    },
    {
      name: 'JARM signing alg',
      requirement: 'JARM',
      env: { MS_BFF_JARM_ENABLED: 'true' },
      cripple: (md) => (md.authorization_signing_alg_values_supported = ['RS256']),
      startup: true,
    },
    {
      name: 'JARM encryption alg',
      requirement: 'JARM encryption',
      env: { MS_BFF_JARM_ENABLED: 'true', MS_BFF_JARM_ENC_ALG: 'RSA-OAEP-256' },
      cripple: (md) => delete md.authorization_encryption_alg_values_supported,
      startup: true,
    },
    {
      name: 'JARM encryption enc',
      requirement: 'JARM encryption',
      env: { MS_BFF_JARM_ENABLED: 'true', MS_BFF_JARM_ENC_ALG: 'RSA-OAEP-256' },
      cripple: (md) => (md.authorization_encryption_enc_values_supported = ['A128GCM']),
      startup: true,
    },
    {
      name: 'DPoP algs',
      requirement: 'Sender constraint: DPoP',
      env: { MS_BFF_DPOP_ENABLED: 'true' },
      cripple: (md) => (md.dpop_signing_alg_values_supported = ['EdDSA']),
      startup: false,
    },
    {
      name: 'DPoP absent',
      requirement: 'Sender constraint: DPoP',
      env: { MS_BFF_DPOP_ENABLED: 'true' },
      cripple: (md) => delete md.dpop_signing_alg_values_supported,
      startup: false,
    },
  ];
  for (const c of cases) {
    it(`fails the gate when the IdP lacks it: ${c.name}`, async () => {
      const cfg = await config(c.env ?? {});
      const good = complianceMatrix(cfg, fullMetadata() as IdpMetadata);
      assert.equal(row(good, c.requirement).status, 'enabled', 'enabled with complete metadata');
      const md = fullMetadata();
      c.cripple(md);
      const rows = complianceMatrix(cfg, md as IdpMetadata);
      const r = row(rows, c.requirement);
      assert.equal(r.status, 'missing');
      assert.ok(r.detail.length > 0, 'names what the IdP lacks');
      for (const other of rows.filter((x) => x !== r && x.requirement !== c.requirement))
        assert.notEqual(other.status, 'missing', `only ${c.requirement} fails (${other.requirement})`);
      assert.equal(missingCapabilities(cfg, md as IdpMetadata).length > 0, c.startup, 'startup check agrees');
    });
  }

  it('fails the gate for mTLS: certificate-bound tokens and endpoint aliases', async () => {
    const cfg = await mtlsConfig();
    const good = complianceMatrix(cfg, fullMetadata() as IdpMetadata);
    assert.equal(row(good, 'Sender constraint: mTLS').status, 'enabled');
    assert.equal(row(good, 'mTLS endpoint aliases').status, 'enabled');
    const noBinding = fullMetadata();
    delete noBinding.tls_client_certificate_bound_access_tokens;
    assert.equal(
      row(complianceMatrix(cfg, noBinding as IdpMetadata), 'Sender constraint: mTLS').status,
      'missing',
    );
    const noAliases = fullMetadata();
    delete noAliases.mtls_endpoint_aliases;
    assert.equal(
      row(complianceMatrix(cfg, noAliases as IdpMetadata), 'mTLS endpoint aliases').status,
      'missing',
    );
  });

  it('reports rows without metadata (--offline) from the configuration alone', async () => {
    const rows = complianceMatrix(await config({ MS_BFF_DPOP_ENABLED: 'true' }), undefined);
    assert.equal(row(rows, 'Sender constraint: DPoP').status, 'enabled');
    assert.equal(row(rows, 'JARM').status, 'not-configured');
    assert.ok(rows.every((r) => r.detail.length === 0));
  });
});

async function mtlsConfig() {
  const { makePki } = await import('../helpers/pki.js');
  const pki = await makePki();
  pki.cleanup();
  return config({
    MS_BFF_TOKEN_AUTH_METHOD: 'tls_client_auth',
    MTLS_CERT: pki.clientCert,
    MTLS_KEY: pki.clientKey,
    MS_BFF_ROUTES: JSON.stringify({ api: { url: 'https://api.example.com', mtls: true } }),
    BFF_JWT_SIGNING_KEY: '',
  });
}
