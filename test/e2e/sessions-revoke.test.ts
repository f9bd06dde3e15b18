/**
 * `fapi-bff sessions revoke --sub SUB`, the operator's way to end every session of one user: run as
 * its own process (the compiled CLI) against the real Redis a running BFF uses, with that BFF's
 * environment. Alice's two sessions end (401 on the next API call, through the store's per-subject
 * index), her refresh tokens are revoked at the real oidc-provider, and Bob's session is untouched.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import type { BffConfig } from '../../src/config/types.js';
import { registrationMetadata } from '../../src/oauth/client-metadata.js';
import { IdpClient } from '../../src/oauth/idp-client.js';
import { sessionHash } from '../../src/observability/audit.js';
import { Metrics } from '../../src/observability/metrics.js';
import { buildApp, type BuiltApp } from '../../src/server/app.js';
import { SessionSealer } from '../../src/session/sealing.js';
import { SessionManager } from '../../src/session/session-manager.js';
import { namespacedStore } from '../../src/store/namespaced.js';
import type { RedisStore } from '../../src/store/redis-store.js';
import { DEFAULT_DEV_USERS, type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { createRedisStore } from '../../src/store/redis-store.js';
import {
  bffEnv,
  type ClientKey,
  clientMetadata,
  freePort,
  makeClientKey,
  REDIS_URL,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { apiCall, loginUntilCallback, startLogin } from '../helpers/flows.js';
import { loginAtDevIdp, TestBrowser } from '../helpers/test-browser.js';

const CLIENT_ID = 'bff-sessions-revoke';
const COOKIE = '__Host-bff-session';
const ZERO = { sub_sessions: 0, ended: 0, revoked: 0, revocation_failed: 0 };
const BOB = {
  id: 'bob',
  username: 'bob',
  password: 'bob-password',
  claims: { name: 'Bob Example', preferred_username: 'bob' },
};

function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist/src/cli/fapi-bff.js', ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
    child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('fapi-bff sessions revoke --sub', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let env: Record<string, string>;
  let key: ClientKey;

  async function login(user: { username: string; password: string }): Promise<TestBrowser> {
    const browser = new TestBrowser();
    const start = await startLogin(browser, bff.url, idp.issuer);
    assert.ok(start.stopped, 'redirected to the IdP');
    const done = await loginAtDevIdp(browser, start.url, user.username, user.password, (u) =>
      u.href.startsWith(`${bff.url}/auth/callback`),
    );
    assert.equal((await browser.request(done.url)).status, 302);
    return browser;
  }
  async function sessionKeyOf(browser: TestBrowser): Promise<string> {
    const session = await bff.services.sessions.load(browser.cookie(bff.url, COOKIE)?.value);
    assert.ok(session);
    return session.key;
  }
  async function refreshToken(browser: TestBrowser): Promise<string> {
    const session = await bff.services.sessions.load(browser.cookie(bff.url, COOKIE)?.value);
    assert.ok(session?.data.refreshToken, 'the session holds a refresh token');
    return session.data.refreshToken;
  }

  before(async () => {
    const port = await freePort();
    key = await makeClientKey('ES256');
    idp = await startDevIdp({
      clients: [clientMetadata(CLIENT_ID, `http://127.0.0.1:${port}`, key)],
      users: [...DEFAULT_DEV_USERS, BOB],
    });
    const prefix = `bff-revoke:${randomBytes(4).toString('hex')}:`;
    const sessionKey = randomBytes(32).toString('base64url');
    env = {
      ...bffEnv({ port, issuer: idp.issuer, clientId: CLIENT_ID, key, sessionKey }),
      REDIS_URL,
      MS_BFF_REDIS_KEY_PREFIX: prefix,
    };
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: CLIENT_ID,
      key,
      sessionKey,
      store: await createRedisStore({ url: REDIS_URL, keyPrefix: prefix }),
    });
  });
  after(async () => {
    await bff?.close();
    await bff?.store.close();
    await idp?.close();
  });

  it("ends every session of the subject on the shared store and revokes their refresh tokens; others' stay", async () => {
    const alice1 = await login({ username: 'alice', password: 'alice-password' });
    const alice2 = await login({ username: 'alice', password: 'alice-password' });
    const bob = await login(BOB);
    const aliceTokens = [await refreshToken(alice1), await refreshToken(alice2)];
    const aliceSessions = [await sessionKeyOf(alice1), await sessionKeyOf(alice2)];
    const bobToken = await refreshToken(bob);
    for (const b of [alice1, alice2, bob])
      assert.equal((await apiCall(b, bff.url, '/auth/session')).status, 200);

    const none = await cli(['sessions', 'revoke', '--sub', 'nobody'], env);
    assert.equal(none.status, 0, none.stderr);
    assert.deepEqual(JSON.parse(none.stdout), { ...ZERO, frontends: { default: ZERO } });
    assert.equal((await apiCall(alice1, bff.url, '/auth/session')).status, 200, 'another sub ends nothing');

    const r = await cli(['sessions', 'revoke', '--sub', 'alice'], env);
    assert.equal(r.status, 0, r.stderr);
    const two = { sub_sessions: 2, ended: 2, revoked: 2, revocation_failed: 0 };
    assert.deepEqual(JSON.parse(r.stdout), { ...two, frontends: { default: two } });
    for (const b of [alice1, alice2]) assert.equal((await apiCall(b, bff.url, '/auth/session')).status, 401);
    assert.equal((await apiCall(bob, bff.url, '/auth/session')).status, 200, "Bob's session stays");
    for (const token of aliceTokens)
      assert.equal(await idp.provider.RefreshToken.find(token), undefined, 'revoked at the IdP');
    // One audit line per session ended, on stderr, with the hash the BFF's own audit lines use.
    const audit = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.audit === true);
    assert.deepEqual(
      audit.map((l) => [l.event, l.sub, l.revocation, l.initiator, l.frontend]),
      [
        ['session.revoked', 'alice', 'revoked', 'cli', 'default'],
        ['session.revoked', 'alice', 'revoked', 'cli', 'default'],
      ],
    );
    assert.deepEqual(audit.map((l) => l.session).sort(), aliceSessions.map((k) => sessionHash(k)).sort());
    for (const token of aliceTokens) assert.ok(!r.stderr.includes(token), 'no refresh token in the output');
    assert.ok(await idp.provider.RefreshToken.find(bobToken), "Bob's refresh token is still valid");

    const again = await cli(['sessions', 'revoke', '--sub', 'alice', '--no-idp'], env);
    assert.deepEqual(JSON.parse(again.stdout), { ...ZERO, frontends: { default: ZERO } });
  });

  it('refuses the in-memory store (it lives inside the BFF process) and a missing --sub', async () => {
    const memory = await cli(['sessions', 'revoke', '--sub', 'alice'], {
      ...bffEnv({ port: 1, issuer: idp.issuer, clientId: CLIENT_ID, key }),
    });
    assert.equal(memory.status, 1);
    assert.match(memory.stderr, /needs the Redis store/);
    const usage = await cli(['sessions', 'revoke'], env);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /--sub SUB is required/);
    const frontend = await cli(['sessions', 'revoke', '--sub', 'alice', '--frontend', 'nope'], env);
    assert.equal(frontend.status, 2);
    assert.match(frontend.stderr, /--frontend nope is not one of default/);
  });
});

describe('fapi-bff sessions revoke with several frontends (MS_BFF_CONFIG)', { timeout: 120_000 }, () => {
  let idp: DevIdp;
  let built: BuiltApp;
  let store: RedisStore;
  let config: BffConfig;
  let env: Record<string, string>;
  let dir: string;
  let bank: string;
  let shop: string;
  /** Discovery requests the IdP received. */
  let discoveries = 0;

  before(async () => {
    const port = await freePort();
    const idpPort = await freePort();
    // Two hosts on the one loopback listener: each frontend its own client, cookie and store namespace.
    bank = `http://localhost:${port}`;
    shop = `http://127.0.0.1:${port}`;
    const key = await makeClientKey('ES256');
    dir = mkdtempSync(join(tmpdir(), 'bff-sessions-revoke-'));
    const file = join(dir, 'bff.json');
    writeFileSync(
      file,
      JSON.stringify({
        frontends: [
          { name: 'bank', host: 'localhost', publicUrl: bank, clientId: 'bank-bff', routes: {} },
          {
            name: 'shop',
            host: '127.0.0.1',
            publicUrl: shop,
            clientId: 'shop-bff',
            cookieName: '__Host-shop',
            routes: {},
          },
        ],
      }),
    );
    const prefix = `bff-revoke-f:${randomBytes(4).toString('hex')}:`;
    env = {
      OIDC_ISSUER: `http://127.0.0.1:${idpPort}`,
      BFF_JWT_SIGNING_KEY: JSON.stringify(key.privateJwk),
      MS_BFF_PROFILE: 'development',
      HOST: '127.0.0.1',
      PORT: String(port),
      MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
      MS_BFF_CONFIG: file,
      REDIS_URL,
      MS_BFF_REDIS_KEY_PREFIX: prefix,
      LOG_LEVEL: 'silent',
    };
    config = await loadConfig(env);
    idp = await startDevIdp({
      port: idpPort,
      clients: config.frontends.map((f) => {
        const { jwks_uri: _jwksUri, ...md } = registrationMetadata(f.config);
        return { ...md, jwks: { keys: [key.publicJwk] } };
      }),
      middleware: [
        async (ctx, next) => {
          if (ctx.path === '/.well-known/openid-configuration') discoveries++;
          await next();
        },
      ],
    });
    store = await createRedisStore({ url: REDIS_URL, keyPrefix: prefix });
    const metrics = new Metrics({ defaultMetrics: false });
    const log = { warn() {}, info() {} };
    built = await buildApp({
      config,
      store,
      idp: await IdpClient.create(config, metrics, log),
      createIdp: (c) => IdpClient.create(c, metrics, log),
      metrics,
      logger: false,
    });
    await built.app.listen({ host: '127.0.0.1', port });
  });
  after(async () => {
    await built?.app.close();
    await store?.close();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The refresh token of a frontend's session, read as that frontend's instance reads it. */
  async function refreshTokenOf(frontend: string, cookie: string | undefined): Promise<string> {
    const f = config.frontends.find((x) => x.name === frontend);
    assert.ok(f);
    const sessions = new SessionManager(
      namespacedStore(store, f.storeNamespace),
      new SessionSealer(f.config.session.keys),
      f.config.session,
    );
    const session = await sessions.load(cookie);
    assert.ok(session?.data.refreshToken, `${frontend}: a session with a refresh token`);
    return session.data.refreshToken;
  }

  it("ends one frontend's sessions with --frontend, then every frontend's, each revoked with its own client", async () => {
    const browser = new TestBrowser();
    for (const url of [bank, shop]) {
      const done = await browser.request(await loginUntilCallback(browser, url, idp));
      assert.equal(done.status, 302, `login at ${url}`);
    }
    const bankToken = await refreshTokenOf('bank', browser.cookie(bank, '__Host-bff-session')?.value);
    const shopToken = await refreshTokenOf('shop', browser.cookie(shop, '__Host-shop')?.value);

    const one = { sub_sessions: 1, ended: 1, revoked: 1, revocation_failed: 0 };
    const onlyShop = await cli(['sessions', 'revoke', '--sub', 'alice', '--frontend', 'shop'], env);
    assert.equal(onlyShop.status, 0, onlyShop.stderr);
    assert.deepEqual(JSON.parse(onlyShop.stdout), { ...one, frontends: { shop: one } });
    assert.equal((await apiCall(browser, shop, '/auth/session')).status, 401, 'shop session ended');
    assert.equal((await apiCall(browser, bank, '/auth/session')).status, 200, 'bank session stays');
    assert.equal(await idp.provider.RefreshToken.find(shopToken), undefined, "shop's token revoked");
    assert.ok(await idp.provider.RefreshToken.find(bankToken));

    const all = await cli(['sessions', 'revoke', '--sub', 'alice'], env);
    assert.equal(all.status, 0, all.stderr);
    assert.deepEqual(JSON.parse(all.stdout), { ...one, frontends: { bank: one, shop: ZERO } });
    assert.equal((await apiCall(browser, bank, '/auth/session')).status, 401, 'bank session ended');
    assert.equal(
      await idp.provider.RefreshToken.find(bankToken),
      undefined,
      "bank's token revoked by bank's client",
    );

    // Both frontends signed in again and revoked in one run: one discovery of the issuer for both clients.
    for (const url of [bank, shop]) {
      const done = await browser.request(await loginUntilCallback(browser, url, idp));
      assert.equal(done.status, 302, `login at ${url}`);
    }
    const before = discoveries;
    const both = await cli(['sessions', 'revoke', '--sub', 'alice'], env);
    assert.equal(both.status, 0, both.stderr);
    assert.deepEqual(JSON.parse(both.stdout), {
      sub_sessions: 2,
      ended: 2,
      revoked: 2,
      revocation_failed: 0,
      frontends: { bank: one, shop: one },
    });
    assert.equal(discoveries, before + 1, 'one discovery for two frontends of one issuer');
  });
});
