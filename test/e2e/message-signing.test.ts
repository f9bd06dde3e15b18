/**
 * FAPI 2.0 Message Signing against the real oidc-provider: PAR + signed JAR, and JARM in all four
 * response modes, signed and encrypted (RSA-OAEP-256, ECDH-ES), plus an encrypted request object.
 * The IdP requires signed request objects from these clients, so a login only completes if the
 * request object is right; it signs (and encrypts) every authorization response, so a login only
 * completes if the BFF verified (and decrypted) it.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type JWK } from 'jose';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { loadConfig } from '../../src/config/load.js';
import { registrationMetadata } from '../../src/oauth/client-metadata.js';
import {
  bffEnv,
  type ClientKey,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { ALICE, apiCall } from '../helpers/flows.js';
import { loginAtDevIdp, TestBrowser } from '../helpers/test-browser.js';

type Mode = 'jwt' | 'query.jwt' | 'form_post.jwt' | 'fragment.jwt';
type Enc = 'none' | 'RSA-OAEP-256' | 'ECDH-ES';

interface Case {
  mode: Mode;
  enc: Enc;
  jarEnc: boolean;
  port: number;
  clientId: string;
  key: ClientKey;
  encPrivate?: JWK;
  encPublic?: JWK;
}

/** A syntactically valid 2048-bit RSA modulus for a placeholder public key (never used to encrypt). */
const PLACEHOLDER_N = Buffer.alloc(256, 0xc5).toString('base64url');

const MODES: Mode[] = ['jwt', 'query.jwt', 'form_post.jwt', 'fragment.jwt'];
const ENCS: Enc[] = ['none', 'RSA-OAEP-256', 'ECDH-ES'];

async function encKeyPair(alg: Exclude<Enc, 'none'>): Promise<{ priv: JWK; pub: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `enc-${randomBytes(4).toString('hex')}`;
  return {
    priv: { ...(await exportJWK(privateKey)), kid, alg, use: 'enc' },
    pub: { ...(await exportJWK(publicKey)), kid, alg, use: 'enc' },
  };
}

describe('PAR + JAR + JARM against oidc-provider', () => {
  let idp: DevIdp;
  let idpJwks: { keys: JWK[] };
  const cases: Case[] = [];
  const running = new Map<string, RunningBff>();

  before(async () => {
    const combos: [Mode, Enc, boolean][] = [];
    for (const mode of MODES) for (const enc of ENCS) combos.push([mode, enc, false]);
    combos.push(['query.jwt', 'none', true], ['form_post.jwt', 'ECDH-ES', true]);
    for (const [mode, enc, jarEnc] of combos) {
      const c: Case = {
        mode,
        enc,
        jarEnc,
        port: await freePort(),
        clientId: `ms-${mode}-${enc}${jarEnc ? '-jarenc' : ''}`,
        key: await makeClientKey('ES256'),
      };
      if (enc !== 'none') {
        const pair = await encKeyPair(enc);
        c.encPrivate = pair.priv;
        c.encPublic = pair.pub;
      }
      cases.push(c);
    }
    // The IdP's encryption keys are needed before it starts (encrypted JAR config): a first IdP
    // run is not possible, so the JAR-encryption cases get the key after start, through the env.
    const idpPort = await freePort();
    const issuer = `http://127.0.0.1:${idpPort}`;
    const clients: Record<string, unknown>[] = [];
    for (const c of cases) {
      // Registered exactly as the BFF describes itself (registrationMetadata): the test proves the
      // metadata an operator copies to the IdP is what a FAPI 2.0 IdP needs. Keys via jwks_uri.
      const config = await loadConfig(
        bffEnv({ port: c.port, issuer, clientId: c.clientId, key: c.key, env: envFor(c, undefined) }),
      );
      clients.push(registrationMetadata(config));
    }
    idp = await startDevIdp({ port: idpPort, encryption: true, clients });
    idpJwks = (await (await fetch(`${idp.issuer}/jwks`)).json()) as { keys: JWK[] };
    assert.ok(
      idpJwks.keys.some((k) => k.use === 'enc'),
      'the IdP publishes encryption keys',
    );
  });

  function envFor(c: Case, idpKeys: { keys: JWK[] } | undefined): Record<string, string> {
    const env: Record<string, string> = {
      MS_BFF_JAR_ENABLED: 'true',
      MS_BFF_JARM_ENABLED: 'true',
      MS_BFF_JARM_MODE: c.mode,
    };
    if (c.encPrivate) {
      env.MS_BFF_JARM_ENC_ALG = c.enc;
      env.MS_BFF_JARM_ENC_ENC = 'A256GCM';
      env.BFF_JARM_PRIV_KEY = JSON.stringify(c.encPrivate);
    }
    if (c.jarEnc) {
      env.MS_BFF_JAR_ENC_ALG = 'RSA-OAEP-256';
      env.MS_BFF_JAR_ENC_METHOD = 'A256GCM';
      // Before the IdP exists, any RSA public key gives the same registration metadata.
      env.BFF_JAR_ENC_KEY = JSON.stringify(
        idpKeys ?? {
          keys: [
            {
              ...c.key.publicJwk,
              kty: 'RSA',
              n: PLACEHOLDER_N,
              e: 'AQAB',
              crv: undefined,
              x: undefined,
              y: undefined,
              alg: 'RSA-OAEP-256',
              use: 'enc',
            },
          ],
        },
      );
    }
    return env;
  }
  after(async () => {
    for (const bff of running.values()) await bff.close();
    await idp?.close();
  });

  async function bffFor(c: Case): Promise<RunningBff> {
    const env = envFor(c, idpJwks);
    const bff = await startBff({ port: c.port, issuer: idp.issuer, clientId: c.clientId, key: c.key, env });
    running.set(c.clientId, bff);
    return bff;
  }

  /** Log in and deliver the authorization response the way a browser does for the mode. */
  async function login(c: Case, bff: RunningBff, browser: TestBrowser) {
    const callback = `${bff.url}/auth/callback`;
    const pushes: string[] = [];
    const onPar = (ctx: { oidc: { params?: Record<string, unknown> } }) => {
      pushes.push(Object.keys(ctx.oidc.params ?? {}).join(','));
    };
    idp.provider.on('pushed_authorization_request.success', onPar);
    const start = await browser.navigate(`${bff.url}/auth/login?returnTo=/signed-in`, {
      stopWhen: (u) => u.origin === new URL(idp.issuer).origin,
    });
    idp.provider.off('pushed_authorization_request.success', onPar);
    assert.deepEqual([...start.url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
    const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
      u.href.startsWith(callback),
    );
    if (c.mode === 'form_post.jwt') {
      assert.ok(done.pending?.body, 'the IdP posted the response');
      assert.ok(new URLSearchParams(done.pending.body).get('response'));
      return browser.request(callback, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(idp.issuer).origin },
        body: done.pending.body,
      });
    }
    if (c.mode === 'fragment.jwt') {
      const fragment = new URLSearchParams(done.url.hash.slice(1));
      assert.ok(fragment.get('response'), 'the response travels in the fragment');
      assert.equal(done.url.search, '', 'nothing in the query');
      const relay = await browser.request(callback);
      assert.equal(relay.status, 200);
      const html = await relay.text();
      const nonce = /script-src 'nonce-([^']+)'/.exec(
        relay.headers.get('content-security-policy') ?? '',
      )?.[1];
      assert.ok(nonce && html.includes(`nonce="${nonce}"`), 'the relay script runs under a CSP nonce');
      return browser.request(callback, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
        body: fragment,
      });
    }
    assert.ok(done.url.searchParams.get('response'), 'the response travels in the query');
    return browser.request(done.url);
  }

  for (const mode of MODES) {
    for (const enc of ENCS) {
      it(`logs in with PAR + JAR and JARM ${mode}, ${enc === 'none' ? 'signed' : `signed and encrypted (${enc})`}`, async () => {
        const c = cases.find((x) => x.mode === mode && x.enc === enc && !x.jarEnc);
        assert.ok(c);
        const bff = await bffFor(c);
        const browser = new TestBrowser();
        const res = await login(c, bff, browser);
        if (res.status !== 302) {
          const scraped = await (await browser.request(`${bff.url}/metrics`)).text();
          assert.fail(
            `login failed: ${scraped
              .split('\n')
              .filter((l) => /^(jarm_|bff_errors)/.test(l))
              .join(' | ')}`,
          );
        }
        assert.equal(res.headers.get('location'), '/signed-in');
        const session = await apiCall(browser, bff.url, '/auth/session');
        assert.equal(session.status, 200);
        const metrics = await (await browser.request(`${bff.url}/metrics`)).text();
        assert.match(
          metrics,
          new RegExp(`jarm_responses_verified_total\\{mode="${mode.replace('.', '\\.')}"\\} 1`),
        );
        assert.match(metrics, /jar_request_objects_created_total\{alg="ES256"\} 1/);
        if (enc !== 'none') {
          const jwks = (await (await browser.request(`${bff.url}/.well-known/jwks.json`)).json()) as {
            keys: JWK[];
          };
          const published = jwks.keys.find((k) => k.use === 'enc');
          assert.equal(published?.kid, c.encPublic?.kid);
          assert.equal(published?.d, undefined, 'only the public part is published');
        }
      });
    }
  }

  it('logs in with an encrypted request object (sign, then encrypt to the IdP)', async () => {
    for (const c of cases.filter((x) => x.jarEnc)) {
      const bff = await bffFor(c);
      const browser = new TestBrowser();
      const res = await login(c, bff, browser);
      assert.equal(res.status, 302, `${c.clientId}: ${await res.text()}`);
    }
  });

  it('refuses a plain (non-JARM) response when JARM is on, and a replayed JARM response', async () => {
    const c = cases.find((x) => x.mode === 'query.jwt' && x.enc === 'none' && !x.jarEnc);
    assert.ok(c);
    const bff = running.get(c.clientId) ?? (await bffFor(c));
    const browser = new TestBrowser();
    const start = await browser.navigate(`${bff.url}/auth/login?returnTo=/`, {
      stopWhen: (u) => u.origin === new URL(idp.issuer).origin,
    });
    const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
      u.href.startsWith(`${bff.url}/auth/callback`),
    );
    // A plain response carrying this login's own state (as an attacker who learnt it would send):
    // refused, and without using up the login, which the genuine signed response then completes.
    const { state } = decodeJwt(done.url.searchParams.get('response') ?? '');
    assert.ok(typeof state === 'string' && state.length > 0);
    const plain = new URL(`${bff.url}/auth/callback`);
    plain.searchParams.set('code', 'abc');
    plain.searchParams.set('state', state);
    plain.searchParams.set('iss', idp.issuer);
    const refused = await browser.request(plain);
    assert.equal(refused.status, 400);
    assert.match(await refused.text(), /BFF_CALLBACK_INVALID/);
    assert.equal((await browser.request(done.url)).status, 302);
    const replay = await browser.request(done.url);
    assert.equal(replay.status, 400, 'the second delivery is refused');
  });
});

describe('JAR without PAR: inline request= (oidc-provider, PAR not required)', () => {
  let idp: DevIdp;
  let bff: RunningBff;

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    const idpPort = await freePort();
    const env = { MS_BFF_JAR_ENABLED: 'true', MS_BFF_PAR_ENABLED: 'false' };
    const config = await loadConfig(
      bffEnv({ port, issuer: `http://127.0.0.1:${idpPort}`, clientId: 'ms-inline', key, env }),
    );
    idp = await startDevIdp({ port: idpPort, requirePar: false, clients: [registrationMetadata(config)] });
    bff = await startBff({ port, issuer: idp.issuer, clientId: 'ms-inline', key, env });
  });
  after(async () => {
    await bff?.close();
    await idp?.close();
  });

  it('sends only client_id and a signed request object in the URL, and logs in', async () => {
    const browser = new TestBrowser();
    const start = await browser.navigate(`${bff.url}/auth/login?returnTo=/inline`, {
      stopWhen: (u) => u.origin === new URL(idp.issuer).origin,
    });
    // RFC 9101 §5: the parameters live in the signed object; nothing else travels beside it.
    assert.deepEqual([...start.url.searchParams.keys()].sort(), ['client_id', 'request']);
    const object = start.url.searchParams.get('request') ?? '';
    assert.equal(decodeProtectedHeader(object).typ, 'oauth-authz-req+jwt');
    const claims = decodeJwt(object);
    assert.equal(claims.aud, idp.issuer);
    assert.equal(claims.code_challenge_method, 'S256');
    assert.ok(
      typeof claims.exp === 'number' && typeof claims.nbf === 'number' && claims.exp - claims.nbf <= 60,
    );
    const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
      u.href.startsWith(`${bff.url}/auth/callback`),
    );
    const res = await browser.request(done.url);
    assert.equal(res.status, 302, await res.text());
    assert.equal(res.headers.get('location'), '/inline');
  });
});
