/**
 * The seed-named JAR, JARM and JWKS metrics, each read back from the BFF's own `/metrics` after the
 * flow that moves it: a refused JARM `typ` and `aud`, an undecryptable encrypted JARM response, a PAR
 * refused while JAR is on, an unreachable IdP JWKS, and the JWKS age after a good login. Counters
 * are compared before and after, so each assertion is caused by its own flow.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CompactEncrypt, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { freePort, makeClientKey, type RunningBff, startBff } from '../helpers/bff-harness.js';
import { authorizeUntilCallback, errorCode } from '../helpers/flows.js';
import type { HostileIdp } from '../helpers/hostile-idp.js';
import { JARM_ENV, JARM_IDP_METADATA, startHostileIdpFor } from '../helpers/stack.js';
import { TestBrowser } from '../helpers/test-browser.js';

const CLIENT_ID = 'bff-seed-metrics';
const JARM_METADATA = {
  ...JARM_IDP_METADATA,
  authorization_encryption_alg_values_supported: ['RSA-OAEP-256'],
  authorization_encryption_enc_values_supported: ['A256GCM'],
};

/** The sum of a metric's samples whose labels contain `labels` (e.g. `alg="RSA-OAEP-256"`), from /metrics. */
async function metric(bff: RunningBff, name: string, labels = ''): Promise<number> {
  const text = await (await new TestBrowser().request(`${bff.url}/metrics`)).text();
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    // The metric itself, not another whose name starts with it (…_total vs …_total_created).
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (labels && !line.includes(labels)) continue;
    const value = line.slice(line.lastIndexOf(' ') + 1);
    sum += value === '+Inf' ? Number.POSITIVE_INFINITY : Number(value);
    seen = true;
  }
  return seen ? sum : Number.NaN;
}

async function rsaEncKey(): Promise<{ priv: JWK; pub: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('RSA-OAEP-256', { extractable: true });
  const kid = `enc-${randomBytes(4).toString('hex')}`;
  return {
    priv: { ...(await exportJWK(privateKey)), kid, alg: 'RSA-OAEP-256', use: 'enc' },
    pub: { ...(await exportJWK(publicKey)), kid, alg: 'RSA-OAEP-256', use: 'enc' },
  };
}

describe('seed-named metrics, read back from /metrics after the flow that moves them', () => {
  let idp: HostileIdp;
  let signed: RunningBff;
  let encrypted: RunningBff;
  const now = () => Math.floor(Date.now() / 1000);

  before(async () => {
    const [port, encPort] = [await freePort(), await freePort()];
    const key = await makeClientKey('ES256');
    idp = await startHostileIdpFor(CLIENT_ID, port, key, {
      redirectUris: [`http://127.0.0.1:${port}/auth/callback`, `http://127.0.0.1:${encPort}/auth/callback`],
    });
    idp.misbehave({ overrideMetadata: JARM_METADATA });
    const jarm = JARM_ENV;
    signed = await startBff({ port, issuer: idp.issuer, clientId: CLIENT_ID, key, env: jarm });
    const enc = await rsaEncKey();
    encrypted = await startBff({
      port: encPort,
      issuer: idp.issuer,
      clientId: CLIENT_ID,
      key,
      env: {
        ...jarm,
        MS_BFF_JARM_ENC_ALG: 'RSA-OAEP-256',
        MS_BFF_JARM_ENC_ENC: 'A256GCM',
        BFF_JARM_PRIV_KEY: JSON.stringify(enc.priv),
      },
    });
  });
  after(async () => {
    await signed?.close();
    await encrypted?.close();
    await idp?.close();
  });

  /** A real login up to the IdP's answer: the code and state it issued for this browser. */
  const authorize = (bff: RunningBff, browser: TestBrowser) => authorizeUntilCallback(browser, bff.url);

  function deliver(bff: RunningBff, browser: TestBrowser, response: string) {
    const url = new URL(`${bff.url}/auth/callback`);
    url.searchParams.set('response', response);
    return browser.request(url);
  }

  const claims = (r: { code: string; state: string }, extra: Record<string, unknown> = {}) => ({
    iss: idp.issuer,
    aud: CLIENT_ID,
    exp: now() + 60,
    iat: now(),
    state: r.state,
    code: r.code,
    ...extra,
  });

  it('jwks_cache_age_seconds: a finite age once a JARM response was verified with the IdP keys', async () => {
    const browser = new TestBrowser();
    const r = await authorize(signed, browser);
    const res = await deliver(signed, browser, await idp.signJwt(claims(r)));
    assert.equal(res.status, 302, await res.text());
    const age = await metric(signed, 'jwks_cache_age_seconds');
    assert.ok(Number.isFinite(age) && age >= 0, `jwks_cache_age_seconds = ${age}`);
  });

  it('jarm_typ_invalid_total and jarm_aud_mismatch_total: one each for a wrong typ and a wrong aud', async () => {
    const typBefore = (await metric(signed, 'jarm_typ_invalid_total')) || 0;
    const audBefore = (await metric(signed, 'jarm_aud_mismatch_total')) || 0;
    const b1 = new TestBrowser();
    const wrongTyp = await idp.signJwt(claims(await authorize(signed, b1)), {
      header: { typ: 'logout+jwt' },
    });
    assert.equal((await deliver(signed, b1, wrongTyp)).status, 400);
    assert.equal(await metric(signed, 'jarm_typ_invalid_total'), typBefore + 1);
    assert.equal((await metric(signed, 'jarm_aud_mismatch_total')) || 0, audBefore);
    const b2 = new TestBrowser();
    const wrongAud = await idp.signJwt(claims(await authorize(signed, b2), { aud: 'someone-else' }));
    assert.equal((await deliver(signed, b2, wrongAud)).status, 400);
    assert.equal(await metric(signed, 'jarm_aud_mismatch_total'), audBefore + 1);
  });

  it('jarm_decryption_failures_total{alg}: a JARM response encrypted to a key that is not ours', async () => {
    const before = (await metric(encrypted, 'jarm_decryption_failures_total', 'alg="RSA-OAEP-256"')) || 0;
    const browser = new TestBrowser();
    const r = await authorize(encrypted, browser);
    const stranger = await rsaEncKey();
    const jwe = await new CompactEncrypt(new TextEncoder().encode(await idp.signJwt(claims(r))))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: stranger.pub.kid, cty: 'JWT' })
      .encrypt(await importJWK(stranger.pub, 'RSA-OAEP-256'));
    const res = await deliver(encrypted, browser, jwe);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'BFF_CALLBACK_INVALID');
    assert.equal(await metric(encrypted, 'jarm_decryption_failures_total', 'alg="RSA-OAEP-256"'), before + 1);
    assert.equal(browser.cookie(encrypted.url, '__Host-bff-session'), undefined);
  });

  it('jar_request_push_failures_total{reason}: the IdP refuses the pushed request object', async () => {
    const before = (await metric(signed, 'jar_request_push_failures_total')) || 0;
    idp.misbehave({ overrideMetadata: JARM_METADATA, parStatus: 400 });
    try {
      const res = await new TestBrowser().request(`${signed.url}/auth/login?returnTo=/ok`);
      assert.ok(res.status >= 400, `login refused (${res.status})`);
    } finally {
      idp.misbehave({ overrideMetadata: JARM_METADATA });
    }
    assert.equal(await metric(signed, 'jar_request_push_failures_total'), before + 1);
  });

  it('jwks_refresh_failures_total: an IdP whose JWKS cannot be fetched', async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    const broken = await startHostileIdpFor(CLIENT_ID, port, key);
    // Nothing listens there: every fetch of the IdP's JWKS fails from the first one on.
    broken.misbehave({
      overrideMetadata: { ...JARM_METADATA, jwks_uri: `http://127.0.0.1:${await freePort()}/jwks` },
    });
    const bff = await startBff({
      port,
      issuer: broken.issuer,
      clientId: CLIENT_ID,
      key,
      env: { MS_BFF_JAR_ENABLED: 'true', MS_BFF_JARM_ENABLED: 'true', MS_BFF_JARM_MODE: 'query.jwt' },
    });
    try {
      let failures = 0;
      for (let i = 0; i < 100 && !(failures >= 1); i++) {
        failures = (await metric(bff, 'jwks_refresh_failures_total')) || 0;
        if (failures < 1) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(failures >= 1, `jwks_refresh_failures_total = ${failures}`);
      // Never fetched: the gauge says -1 (Prometheus has no "never"), distinct from any real age.
      assert.equal(await metric(bff, 'jwks_cache_age_seconds'), -1);
    } finally {
      await bff.close();
      await broken.close();
    }
  });
});
