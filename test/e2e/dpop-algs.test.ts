/**
 * Every kind of DPoP proof the BFF produces (ES256, PS256, EdDSA session keys) is accepted by
 * oidc-provider: a full login binds the tokens to the session key (token endpoint proofs), and a
 * proof signed by the BFF's node:crypto signer for that key is accepted at the IdP's userinfo
 * endpoint, a DPoP-protected resource (RFC 9449 §7), including its nonce challenge (§9).
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { type DpopAlg, DpopKey } from '../../src/dpop/client.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';

for (const alg of ['ES256', 'PS256', 'EdDSA'] as DpopAlg[]) {
  describe(`DPoP ${alg} session keys against oidc-provider`, () => {
    let idp: DevIdp;
    let bff: RunningBff;

    before(async () => {
      const port = await freePort();
      const key = await makeClientKey('ES256');
      idp = await startDevIdp({
        clients: [
          { ...clientMetadata('bff-alg', `http://127.0.0.1:${port}`, key), dpop_bound_access_tokens: true },
        ],
        dpop: { requireNonce: true },
      });
      bff = await startBff({
        port,
        issuer: idp.issuer,
        clientId: 'bff-alg',
        key,
        env: { MS_BFF_DPOP_ENABLED: 'true', MS_BFF_DPOP_ALG: alg },
      });
    });
    after(async () => {
      await bff?.close();
      await idp?.close();
    });

    it('logs in with a bound token, and the BFF-signed proof is accepted at userinfo', async () => {
      const browser = new TestBrowser();
      assert.equal((await fullLogin(browser, bff.url, idp)).status, 302);
      const cookie = browser.cookie(bff.url, '__Host-bff-session')?.value;
      const session = await bff.services.sessions.load(cookie);
      assert.ok(session?.data.dpop, 'the session has a DPoP key');
      assert.equal(session.data.tokenType, 'dpop');
      const key = await DpopKey.import(session.data.dpop);
      const userinfo = new URL(`${idp.issuer}/me`);
      const call = async (nonce?: string) => {
        const proof = await key.proof({
          htm: 'GET',
          htu: userinfo,
          nonce,
          accessToken: session.data.accessToken,
        });
        assert.equal(decodeProtectedHeader(proof).alg, alg);
        return fetch(userinfo, {
          headers: { authorization: `DPoP ${session.data.accessToken}`, dpop: proof },
        });
      };
      let res = await call();
      if (res.status === 401 && res.headers.get('dpop-nonce'))
        res = await call(res.headers.get('dpop-nonce') ?? '');
      const body = (await res.json()) as { sub?: string };
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(typeof body.sub, 'string');
    });
  });
}
