/**
 * EdDSA (Ed25519) as our client assertion and request object alg, which FAPI 2.0 allows
 * (https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.4.1): an Ed25519 key in
 * BFF_JWT_SIGNING_KEY is taken as EdDSA, refused where the IdP does not advertise EdDSA for client
 * authentication, and a full login against oidc-provider signs both with it, labelled "EdDSA".
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { decodeProtectedHeader, exportJWK, exportPKCS8, generateKeyPair } from 'jose';
import { readFixture } from '../../src/cli/interop-matrix.js';
import { loadConfig } from '../../src/config/load.js';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { missingCapabilities } from '../../src/oauth/capabilities.js';
import { sizeCappedFetch } from '../../src/oauth/http.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';

const base = { OIDC_ISSUER: 'https://idp.example.com', OIDC_CLIENT_ID: 'bff', MS_BFF_PROFILE: 'development' };

describe('EdDSA client signing key', () => {
  it('an Ed25519 JWK or PKCS#8 PEM is an EdDSA key; an EC key is refused as EdDSA', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { extractable: true });
    const fromJwk = await loadConfig({
      ...base,
      BFF_JWT_SIGNING_KEY: JSON.stringify(await exportJWK(privateKey)),
    });
    assert.equal(fromJwk.signingKey?.alg, 'EdDSA');
    assert.equal(fromJwk.signingKey?.publicJwk.crv, 'Ed25519');
    const fromPem = await loadConfig({ ...base, BFF_JWT_SIGNING_KEY: await exportPKCS8(privateKey) });
    assert.equal(fromPem.signingKey?.alg, 'EdDSA');
    const ec = await makeClientKey('ES256');
    await assert.rejects(
      loadConfig({
        ...base,
        BFF_JWT_SIGNING_KEY: JSON.stringify({ ...ec.privateJwk, alg: undefined }),
        BFF_JWT_SIGNING_ALG: 'EdDSA',
      }),
      /BFF_JWT_SIGNING_KEY/,
    );
  });

  it('the startup check refuses an IdP that does not advertise EdDSA for client authentication', async () => {
    const key = await makeClientKey('EdDSA');
    const config = await loadConfig({ ...base, BFF_JWT_SIGNING_KEY: JSON.stringify(key.privateJwk) });
    const doc = readFixture('keycloak');
    assert.ok(doc);
    const md = { ...doc, issuer: 'https://idp.example.com' };
    assert.ok(
      missingCapabilities(config, md).includes(
        'token_endpoint_auth_signing_alg_values_supported must include EdDSA',
      ),
    );
    const withEdDSA = {
      ...md,
      token_endpoint_auth_signing_alg_values_supported: ['PS256', 'ES256', 'EdDSA'],
    };
    assert.deepEqual(missingCapabilities(config, withEdDSA), []);
  });
});

describe('EdDSA client assertions and request objects against oidc-provider', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  const pushed: URLSearchParams[] = [];
  const tokenCalls: URLSearchParams[] = [];

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('EdDSA');
    idp = await startDevIdp({
      clients: [
        {
          ...clientMetadata('bff-eddsa', `http://127.0.0.1:${port}`, key),
          request_object_signing_alg: 'EdDSA',
        },
      ],
    });
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'bff-eddsa',
      key,
      idpFetch: async (url, init) => {
        const path = new URL(String(url)).pathname;
        if (path === '/request') pushed.push(new URLSearchParams(String(init.body)));
        if (path === '/token') tokenCalls.push(new URLSearchParams(String(init.body)));
        return sizeCappedFetch()(url, init);
      },
      env: { MS_BFF_JAR_ENABLED: 'true' },
    });
  });
  after(async () => {
    await bff?.close();
    await idp?.close();
  });

  it('logs in; PAR and token requests carry EdDSA client assertions, the request object is EdDSA', async () => {
    const res = await fullLogin(new TestBrowser(), bff.url, idp);
    assert.equal(res.status, 302, await res.text());
    assert.equal(pushed.length, 1);
    assert.ok(tokenCalls.length >= 1);
    for (const body of [...pushed, ...tokenCalls]) {
      const assertion = body.get('client_assertion');
      assert.ok(assertion, 'private_key_jwt');
      assert.equal(decodeProtectedHeader(assertion).alg, 'EdDSA');
    }
    assert.equal(decodeProtectedHeader(pushed[0]?.get('request') ?? '').alg, 'EdDSA');
  });
});
