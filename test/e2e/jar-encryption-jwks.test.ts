/**
 * Encrypted request objects to the IdP's current `use: enc` key, taken from its JWKS (no
 * BFF_JAR_ENC_KEY pin), against the real oidc-provider: a login, then an IdP encryption-key
 * rotation (the IdP restarted on the same port without the old enc key) and a second login on the
 * same, never restarted, BFF. https://www.rfc-editor.org/rfc/rfc9101#section-6.1
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, decodeProtectedHeader, exportJWK, generateKeyPair, type JWK } from 'jose';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { signingKeys } from '../../src/dev/idp/runtime.js';
import { loadConfig } from '../../src/config/load.js';
import { registrationMetadata } from '../../src/oauth/client-metadata.js';
import { bffEnv, freePort, makeClientKey, type RunningBff, startBff } from '../helpers/bff-harness.js';
import { ALICE } from '../helpers/flows.js';
import { loginAtDevIdp, TestBrowser } from '../helpers/test-browser.js';

const ENV = {
  MS_BFF_JAR_ENABLED: 'true',
  MS_BFF_JAR_ENC_ALG: 'RSA-OAEP-256',
  MS_BFF_JAR_ENC_METHOD: 'A256GCM',
};

describe('encrypted JAR to the IdP key from its JWKS (no pin)', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let idpPort: number;
  let clients: Record<string, unknown>[];
  let idpKeys: { keys: JWK[] };
  /** The `request` of every PAR body as it arrived (oidc-provider later replaces it with the decrypted object). */
  const pushed: string[] = [];
  const middleware = [
    async (
      ctx: { method: string; path: string; req: AsyncIterable<Buffer> & { body?: string } },
      next: () => Promise<unknown>,
    ) => {
      if (ctx.method === 'POST' && ctx.path === '/request') {
        const chunks: Buffer[] = [];
        for await (const chunk of ctx.req) chunks.push(chunk);
        // oidc-provider takes an upstream-parsed body from req.body.
        ctx.req.body = Buffer.concat(chunks).toString('utf8');
        const request = new URLSearchParams(ctx.req.body).get('request');
        if (request) pushed.push(request);
      }
      await next();
    },
  ] as never[];

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idpPort = await freePort();
    const issuer = `http://127.0.0.1:${idpPort}`;
    const config = await loadConfig(bffEnv({ port, issuer, clientId: 'jar-enc-jwks', key, env: ENV }));
    assert.equal(config.jar.encryption?.key, undefined, 'no pinned key');
    clients = [registrationMetadata(config)];
    idpKeys = (await signingKeys(true)) as unknown as { keys: JWK[] };
    idp = await startDevIdp({ port: idpPort, encryption: true, clients, jwks: idpKeys as never, middleware });
    bff = await startBff({ port, issuer, clientId: 'jar-enc-jwks', key, env: ENV });
  });
  after(async () => {
    await bff?.close();
    await idp?.close();
  });

  /** Logs in through PAR with an (unpinned) encrypted request object. */
  async function login(): Promise<Record<string, unknown>> {
    const browser = new TestBrowser();
    const start = await browser.navigate(`${bff.url}/auth/login?returnTo=/enc`, {
      stopWhen: (u) => u.origin === new URL(idp.issuer).origin,
    });
    assert.deepEqual([...start.url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
    const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
      u.href.startsWith(`${bff.url}/auth/callback`),
    );
    const res = await browser.request(done.url);
    assert.equal(res.status, 302, await res.text());
    assert.equal(res.headers.get('location'), '/enc');
    const last = pushed.at(-1);
    assert.ok(last, 'the IdP received a pushed request object');
    // A JWE compact serialization has five segments (RFC 7516 §7.1); a JWS has three.
    assert.equal(last.split('.').length, 5, 'the request object arrived encrypted');
    return decodeProtectedHeader(last) as Record<string, unknown>;
  }

  it('logs in with JAR encryption and no pinned key', async () => {
    const header = await login();
    const rsaEnc = idpKeys.keys.find((k) => k.use === 'enc' && k.kty === 'RSA');
    assert.equal(header.alg, 'RSA-OAEP-256');
    assert.equal(header.cty, 'JWT');
    assert.equal(header.kid, rsaEnc?.kid, 'encrypted to the key the IdP publishes');
  });

  it('follows an IdP encryption-key rotation without a BFF restart', async () => {
    const old = idpKeys.keys.find((k) => k.use === 'enc' && k.kty === 'RSA');
    const { privateKey } = await generateKeyPair('RSA-OAEP-256', { extractable: true, modulusLength: 2048 });
    const jwk = await exportJWK(privateKey);
    const fresh: JWK = { ...jwk, alg: 'RSA-OAEP-256', use: 'enc', kid: await calculateJwkThumbprint(jwk) };
    // The old enc key is gone (a hard rotation): the BFF's cached choice no longer decrypts.
    idpKeys = { keys: [...idpKeys.keys.filter((k) => k !== old), fresh] };
    await idp.close();
    idp = await startDevIdp({ port: idpPort, encryption: true, clients, jwks: idpKeys as never, middleware });
    const header = await login();
    assert.equal(header.kid, fresh.kid, 'encrypted to the new key');
  });
});
