/**
 * Dynamic client registration (RFC 7591) and management (RFC 7592) against oidc-provider with
 * registration and registration management enabled: `fapi-bff register` → the real entry point
 * with OIDC_CLIENT_REGISTRATION_FILE → a login; a key rotation, `register --update` → a login.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { freePort, makeClientKey } from '../helpers/bff-harness.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { runToExit, startMain } from '../helpers/main-process.js';
import { TestBrowser } from '../helpers/test-browser.js';

describe('dynamic client registration (RFC 7591 / RFC 7592)', () => {
  let idp: DevIdp;
  let dir: string;
  let env: Record<string, string>;
  let port: number;
  const INITIAL = randomBytes(16).toString('hex');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fapi-bff-dcr-'));
    port = await freePort();
    idp = await startDevIdp({ clients: [], registration: { initialAccessToken: INITIAL } });
    const key = await makeClientKey('ES256');
    writeFileSync(join(dir, 'signing.json'), JSON.stringify(key.privateJwk), { mode: 0o600 });
    writeFileSync(join(dir, 'iat'), INITIAL);
    writeFileSync(join(dir, 'wrong-iat'), 'not-the-token');
    env = {
      OIDC_ISSUER: idp.issuer,
      BFF_JWT_SIGNING_KEY: join(dir, 'signing.json'),
      MS_BFF_PROFILE: 'development',
      MS_BFF_PUBLIC_URL: `http://127.0.0.1:${port}`,
      HOST: '127.0.0.1',
      PORT: String(port),
      MS_BFF_ROUTES: '{}',
      MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
      MS_BFF_JAR_ENABLED: 'true',
      MS_BFF_DPOP_ENABLED: 'true',
    };
  });
  after(async () => {
    await idp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function login(extra: Record<string, string>): Promise<void> {
    const main = startMain({ ...env, ...extra, LOG_LEVEL: 'warn' });
    try {
      const url = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 240; i++) {
        if (
          await fetch(`${url}/healthz`).then(
            (r) => r.ok,
            () => false,
          )
        )
          break;
        if (main.child.exitCode !== null) throw new Error(`the BFF exited: ${main.stderr()}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      const browser = new TestBrowser();
      const done = await fullLogin(browser, url, idp);
      assert.equal(done.status, 302, await done.text());
      const session = await apiCall(browser, url, '/auth/session');
      assert.equal(session.status, 200, await session.text());
    } finally {
      await main.stop();
    }
  }

  it('shows the IdP error code and description (RFC 7591 §3.2.2)', async () => {
    const r = await runToExit(
      ['register', '--initial-access-token-file', join(dir, 'wrong-iat'), '--out', join(dir, 'x.json')],
      env,
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid_token/);
  });

  it('registers, logs in with the registered client, updates after a key rotation and logs in again', async () => {
    const file = join(dir, 'registration.json');
    const registered = await runToExit(
      ['register', '--initial-access-token-file', join(dir, 'iat'), '--out', file],
      env,
    );
    assert.equal(registered.code, 0, registered.stderr);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const record = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    for (const k of ['client_id', 'registration_access_token', 'registration_client_uri'])
      assert.ok(record[k], k);
    const client = await idp.provider.Client.find(record.client_id ?? '');
    assert.equal(client?.metadata().dpop_bound_access_tokens, true);
    assert.equal(
      client?.metadata().backchannel_logout_uri,
      `http://127.0.0.1:${port}/auth/backchannel-logout`,
    );
    assert.equal(client?.metadata().token_endpoint_auth_method, 'private_key_jwt');
    await login({ OIDC_CLIENT_REGISTRATION_FILE: file });

    const shown = await runToExit(['register', '--show', '--out', file], env);
    assert.equal(shown.code, 0, shown.stderr);
    const md = JSON.parse(shown.stdout) as Record<string, unknown>;
    assert.equal(md.client_id, record.client_id);
    assert.equal(md.registration_access_token, '***');

    // A new signing key (ES256 → PS256), then --update: the IdP now expects PS256 assertions.
    const next = await makeClientKey('PS256');
    writeFileSync(join(dir, 'signing.json'), JSON.stringify(next.privateJwk), { mode: 0o600 });
    const updated = await runToExit(['register', '--update', '--out', file], env);
    assert.equal(updated.code, 0, updated.stderr);
    const after = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    assert.notEqual(
      after.registration_access_token,
      record.registration_access_token,
      'rotated token stored',
    );
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(
      (await idp.provider.Client.find(record.client_id ?? ''))?.metadata().token_endpoint_auth_signing_alg,
      'PS256',
    );
    await login({ OIDC_CLIENT_REGISTRATION_FILE: file });

    const deleted = await runToExit(['register', '--delete', '--out', file], env);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(await idp.provider.Client.find(record.client_id ?? ''), undefined);
  });
});
