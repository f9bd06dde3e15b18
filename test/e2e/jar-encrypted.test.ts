/**
 * Encrypted request objects (RFC 9101 §6.1, https://www.rfc-editor.org/rfc/rfc9101#section-6.1): the
 * IdP must receive a JWE, not a signed JWT, in the PAR body's `request` — checked on the body
 * BFF sent to the PAR endpoint, and the login must then complete (the IdP decrypted it with its key).
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { decodeProtectedHeader, type JWK } from 'jose';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
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

describe('encrypted JAR reaches the IdP encrypted', { timeout: 60_000 }, () => {
  let idp: DevIdp;
  let bff: RunningBff;
  const pushed: string[] = [];

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({
      encryption: true,
      clients: [
        {
          ...clientMetadata('jar-enc', `http://127.0.0.1:${port}`, key),
          request_object_signing_alg: 'ES256',
          request_object_encryption_alg: 'RSA-OAEP-256',
          request_object_encryption_enc: 'A256GCM',
        },
      ],
    });
    const jwks = (await (await fetch(`${idp.issuer}/jwks`)).json()) as { keys: JWK[] };
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'jar-enc',
      key,
      // What the BFF put on the wire to the PAR endpoint (oidc-provider accepts a plain JWS too, and
      // replaces the JWE by its plaintext before any hook can see it).
      idpFetch: async (url, init) => {
        if (new URL(String(url)).pathname === '/request') {
          pushed.push(new URLSearchParams(String(init.body)).get('request') ?? '');
        }
        return sizeCappedFetch()(url, init);
      },
      env: {
        MS_BFF_JAR_ENABLED: 'true',
        MS_BFF_JAR_ENC_ALG: 'RSA-OAEP-256',
        MS_BFF_JAR_ENC_METHOD: 'A256GCM',
        BFF_JAR_ENC_KEY: JSON.stringify(jwks),
      },
    });
  });
  after(async () => {
    await bff?.close();
    await idp?.close();
  });

  it('pushes a compact JWE (RSA-OAEP-256, A256GCM, cty JWT) and the login completes', async () => {
    const res = await fullLogin(new TestBrowser(), bff.url, idp);
    assert.equal(res.status, 302, await res.text());
    assert.equal(pushed.length, 1);
    const request = pushed[0] as string;
    assert.equal(request.split('.').length, 5, 'five segments: a JWE, not a JWS');
    const header = decodeProtectedHeader(request);
    assert.equal(header.alg, 'RSA-OAEP-256');
    assert.equal(header.enc, 'A256GCM');
    assert.equal(String(header.cty).toUpperCase(), 'JWT', 'a nested, signed JWT inside');
  });
});
