/**
 * Pre-rotation of our keys (seed 002 §5) against oidc-provider, which fetches our jwks_uri:
 * `fapi-bff keys generate` + `keys rotate` for the signing and the JARM decryption set, a login, a
 * wait past the pre-publish window, another login — no restart. The IdP accepts client assertions
 * and request objects signed by the new key; a JARM response encrypted to the old key still decrypts.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { loadConfig } from '../../src/config/load.js';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { registrationMetadata } from '../../src/oauth/client-metadata.js';
import { bffEnv, freePort, type RunningBff, startBff } from '../helpers/bff-harness.js';
import { apiCall, loginUntilCallback } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';

const CLI = 'dist/src/cli/fapi-bff.js';
const keysCli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, 'keys', ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
};

interface Seen {
  requestKid?: string;
  assertionKids: string[];
}

describe('key rotation without a restart (oidc-provider fetching our jwks_uri)', () => {
  let dir: string;
  let idp: DevIdp;
  let bff: RunningBff;
  const seen: Seen[] = [];
  let current: Seen = { assertionKids: [] };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fapi-bff-keys-'));
    const sig = join(dir, 'sig');
    const enc = join(dir, 'enc');
    keysCli('generate', '--use', 'sig', '--alg', 'ES256', '--out', sig);
    keysCli('generate', '--use', 'enc', '--alg', 'RSA-OAEP-256', '--out', enc);
    keysCli('rotate', sig);
    keysCli('rotate', enc);
    const port = await freePort();
    const idpPort = await freePort();
    const env = {
      BFF_JWT_SIGNING_KEY: sig,
      BFF_JARM_PRIV_KEY: enc,
      // Long enough that the first login (slow on a loaded CI machine) ends before the window does.
      MS_BFF_KEY_PREPUBLISH_SECONDS: '8',
      MS_BFF_JAR_ENABLED: 'true',
      MS_BFF_JARM_ENABLED: 'true',
      MS_BFF_JARM_MODE: 'query.jwt',
      MS_BFF_JARM_ENC_ALG: 'RSA-OAEP-256',
      MS_BFF_JARM_ENC_ENC: 'A256GCM',
    };
    const config = await loadConfig(
      bffEnv({ port, issuer: `http://127.0.0.1:${idpPort}`, clientId: 'bff-rotation', env }),
    );
    idp = await startDevIdp({ port: idpPort, encryption: true, clients: [registrationMetadata(config)] });
    // Every client assertion and request object the IdP accepted.
    const record = (ctx: { oidc: { body?: Record<string, unknown>; params?: Record<string, unknown> } }) => {
      const assertion = ctx.oidc.params?.client_assertion ?? ctx.oidc.body?.client_assertion;
      if (typeof assertion === 'string')
        current.assertionKids.push(String(decodeProtectedHeader(assertion).kid));
      const request = ctx.oidc.body?.request;
      if (typeof request === 'string') current.requestKid = String(decodeProtectedHeader(request).kid);
    };
    idp.provider.on('pushed_authorization_request.success', record);
    idp.provider.on('grant.success', record);
    bff = await startBff({ port, issuer: idp.issuer, clientId: 'bff-rotation', env });
  });
  after(async () => {
    await bff?.close();
    await idp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function login(): Promise<{ jweKid: string }> {
    current = { assertionKids: [] };
    seen.push(current);
    const browser = new TestBrowser();
    const callback = await loginUntilCallback(browser, bff.url, idp);
    const response = callback.searchParams.get('response');
    assert.ok(response, 'a JARM response');
    const jweKid = String(decodeProtectedHeader(response).kid);
    const done = await browser.request(callback);
    assert.equal(done.status, 302, await done.text());
    assert.equal((await apiCall(browser, bff.url, '/auth/session')).status, 200);
    return { jweKid };
  }

  it('publishes both keys, signs with the new one after the window, still decrypts for the old one', async () => {
    const sigKeys = readdirSync(join(dir, 'sig')).map((f) => f.replace(/\.json$/, ''));
    for (const f of readdirSync(join(dir, 'sig')))
      assert.equal(statSync(join(dir, 'sig', f)).mode & 0o777, 0o600);
    const listed = JSON.parse(keysCli('list', join(dir, 'sig'), '--json')) as {
      kid: string;
      state: string;
    }[];
    assert.equal(listed.length, 2);
    assert.ok(!JSON.stringify(listed).includes('"d"'), 'no private member');

    const jwksRes = await fetch(`${bff.url}/.well-known/jwks.json`);
    assert.match(jwksRes.headers.get('cache-control') ?? '', /max-age=4\b/, 'max-age below the 8 s window');
    const jwks = (await jwksRes.json()) as { keys: { kid: string; use: string; d?: string }[] };
    assert.equal(jwks.keys.length, 4, 'next and active keys of both sets are published');
    assert.ok(jwks.keys.every((k) => k.d === undefined));

    const states = () => new Map(bff.services.idp.keys.list().map((k) => [k.kid, k]));
    const oldSig = [...states().values()].find((k) => k.use === 'sig' && k.state === 'active')?.kid;
    const newSig = [...states().values()].find((k) => k.use === 'sig' && k.state === 'next')?.kid;
    const oldEnc = [...states().values()].find((k) => k.use === 'enc' && k.state === 'active')?.kid;
    assert.ok(oldSig && newSig && oldEnc && sigKeys.includes(oldSig) && sigKeys.includes(newSig));

    const first = await login();
    assert.equal(seen[0]?.requestKid, oldSig, 'request object signed by the active (old) key');
    assert.ok(seen[0]?.assertionKids.length && seen[0].assertionKids.every((k) => k === oldSig));
    assert.equal(first.jweKid, oldEnc, 'the IdP encrypted to the active encryption key');

    // Past the pre-publish window (8 s): the new keys are active, with no restart.
    // Both sets move on their own schedule (each key counts from when it was first served): wait for
    // all three transitions, not only the signing key's, before asserting them.
    const rotated = () =>
      states().get(newSig)?.state === 'active' &&
      states().get(oldSig)?.state === 'retiring' &&
      states().get(oldEnc)?.state === 'retiring';
    for (let i = 0; i < 200 && !rotated(); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(states().get(newSig)?.state, 'active');
    assert.equal(states().get(oldSig)?.state, 'retiring');
    assert.equal(states().get(oldEnc)?.state, 'retiring');

    const second = await login();
    assert.equal(seen[1]?.requestKid, newSig, 'the IdP accepted a request object signed by the new key');
    assert.ok(
      seen[1]?.assertionKids.length && seen[1].assertionKids.every((k) => k === newSig),
      'and assertions',
    );
    // The IdP still holds our JWKS from the first login (it caches it): it encrypted to the old key,
    // which is retiring now, and the response still decrypted (the login completed).
    assert.equal(second.jweKid, oldEnc, 'JARM response encrypted to the old key during the overlap');
  });
});
