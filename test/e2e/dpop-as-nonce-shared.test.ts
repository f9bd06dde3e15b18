/**
 * The AS's DPoP nonce (RFC 9449 §8) learned by one instance is used by another: instance B's first
 * PAR and token requests carry the nonce instance A stored, so B pays no `use_dpop_nonce` round trip.
 * The nonce reaches openid-client's DPoP handle through its public `modifyAssertion` hook (it used to
 * go through an undocumented handle method).
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';

describe('AS DPoP nonce shared between instances', { timeout: 60_000 }, () => {
  let idp: DevIdp;
  let a: RunningBff;
  let b: RunningBff;
  const calls: string[] = [];

  before(async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({
      clients: [
        {
          ...clientMetadata('bff-nonce', `http://127.0.0.1:${portA}`, key),
          // Each instance on its own URL here, so each does its own PAR and token request.
          redirect_uris: [portA, portB].map((p) => `http://127.0.0.1:${p}/auth/callback`),
          dpop_bound_access_tokens: true,
        },
      ],
      dpop: { requireNonce: true },
      onRequest: (r) => {
        if (r.method === 'POST') calls.push(new URL(r.url, 'http://x').pathname);
      },
    });
    const store = new MemoryStore({ maxEntries: 1000 });
    const common = {
      issuer: idp.issuer,
      clientId: 'bff-nonce',
      key,
      store,
      env: {
        MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
        MS_BFF_DPOP_ENABLED: 'true',
      },
    };
    a = await startBff({ ...common, port: portA });
    b = await startBff({ ...common, port: portB });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await a?.store.close();
    await idp?.close();
  });

  it('B sends the nonce A learned on its first PAR and token requests', async () => {
    const par = new URL(String(a.services.idp.metadata.pushed_authorization_request_endpoint)).pathname;
    const token = new URL(String(a.services.idp.metadata.token_endpoint)).pathname;
    const count = (path: string) => calls.filter((c) => c === path).length;

    assert.equal((await fullLogin(new TestBrowser(), a.url, idp)).status, 302);
    assert.equal(count(par), 2, 'A: one PAR refused with use_dpop_nonce, then the retry');

    calls.length = 0;
    const login = await fullLogin(new TestBrowser(), b.url, idp);
    assert.equal(login.status, 302, await login.text());
    assert.equal(count(par), 1, 'B: the first PAR already carries the shared nonce');
    assert.equal(count(token), 1, 'B: the first token request already carries the shared nonce');
  });
});
