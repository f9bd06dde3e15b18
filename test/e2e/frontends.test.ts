/**
 * Several frontends in one BFF process (issue 10, CONTRACT "Frontends"), against a real
 * oidc-provider with one registered client per frontend:
 *  - `bank` on host localhost: DPoP + JAR + JARM (query.jwt), back-channel logout registered;
 *  - `shop` on host 127.0.0.1: a plain client, its own routes and cookie name;
 *  - `admin` on 127.0.0.1 under pathPrefix /admin/: a `__Secure-` cookie with Path=/admin/.
 * Both hosts resolve to the loopback address the BFF listens on. Then the configuration file is
 * rewritten while sessions are open: a route is added, JARM turned off, a route switched off, a
 * broken file refused, a restart-only change refused.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import type { BffConfig } from '../../src/config/types.js';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { registrationMetadata } from '../../src/oauth/client-metadata.js';
import { IdpClient } from '../../src/oauth/idp-client.js';
import { Metrics } from '../../src/observability/metrics.js';
import { buildApp, type BuiltApp } from '../../src/server/app.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { freePort, LogSink, makeClientKey, type ClientKey } from '../helpers/bff-harness.js';
import { apiCall, errorCode, loginUntilCallback } from '../helpers/flows.js';
import { confirmEndSession, TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';
import { loggerOptions } from '../../src/observability/logger.js';

/** Open a WebSocket; resolves with the socket, or with the HTTP refusal of the handshake. */
function wsConnect(url: string, headers: Record<string, string>): Promise<WebSocket | { status: number }> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
    });
    ws.once('error', reject);
  });
}

/** A GET with a Host header of our choice (fetch does not let a caller set Host). */
function withHost(
  port: number,
  path: string,
  host: string,
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('several frontends in one BFF', { timeout: 120_000 }, () => {
  let idp: DevIdp;
  let built: BuiltApp;
  let metrics: Metrics;
  let key: ClientKey;
  let bankApi: RecordingUpstream;
  let shopApi: RecordingUpstream;
  let echo: WebSocketServer;
  let wsUpstream: string;
  let dir: string;
  let file: string;
  let env: Record<string, string>;
  const logs = new LogSink();
  const pushedWithRequestObject: boolean[] = [];
  let port: number;
  let bank: string;
  let shop: string;
  let admin: string;

  /** The file as the operator writes it; `change` edits the frontends before writing. */
  function frontendsFile(change: (frontends: Record<string, unknown>[]) => void = () => undefined): string {
    const frontends: Record<string, unknown>[] = [
      {
        name: 'bank',
        host: 'localhost',
        publicUrl: bank,
        clientId: 'bank-bff',
        flags: { dpop: true, jar: true, jarm: true, jarmMode: 'query.jwt' },
        routes: { accounts: { url: bankApi.url, token: 'user' } },
      },
      {
        name: 'shop',
        host: '127.0.0.1',
        publicUrl: shop,
        clientId: 'shop-bff',
        cookieName: '__Host-shop',
        routes: { cart: shopApi.url },
      },
      {
        name: 'admin',
        host: '127.0.0.1',
        pathPrefix: '/admin/',
        publicUrl: shop,
        clientId: 'admin-bff',
        postLogoutRedirect: '/admin/',
        routes: { cart: shopApi.url, live: { url: wsUpstream, websocket: true } },
      },
    ];
    change(frontends);
    return JSON.stringify({ frontends }, null, 2);
  }

  /** The client each frontend needs at the IdP, as the BFF describes itself (keys inline). */
  function client(config: BffConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const { jwks_uri: _jwksUri, ...md } = registrationMetadata(config);
    return { ...md, jwks: { keys: [key.publicJwk] }, ...extra };
  }

  async function reloads(outcome: string): Promise<number> {
    const text = await metrics.render();
    return Number(
      new RegExp(`^bff_config_reloads_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0,
    );
  }

  /** Rewrite the file and wait (bounded: the CONTRACT's 5 s) until a reload with `outcome` is counted. */
  async function rewrite(text: string, outcome: string): Promise<number> {
    const before = await reloads(outcome);
    const started = Date.now();
    writeFileSync(file, text);
    while ((await reloads(outcome)) === before) {
      assert.ok(Date.now() - started < 5_000, `no ${outcome} reload within 5 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return Date.now() - started;
  }

  async function login(browser: TestBrowser, url: string): Promise<URL> {
    const callback = await loginUntilCallback(browser, url, idp, '/home');
    const done = await browser.request(callback);
    assert.equal(done.status, 302, `login at ${url}: ${await done.text()}`);
    return callback;
  }

  before(async () => {
    port = await freePort();
    bank = `http://localhost:${port}`;
    shop = `http://127.0.0.1:${port}`;
    admin = `${shop}/admin`;
    key = await makeClientKey('ES256');
    bankApi = await startRecordingUpstream();
    shopApi = await startRecordingUpstream();
    echo = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(echo, 'listening');
    wsUpstream = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
    echo.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo:${String(data)}`)));
    dir = mkdtempSync(join(tmpdir(), 'bff-frontends-e2e-'));
    file = join(dir, 'bff.json');
    writeFileSync(file, frontendsFile());
    const idpPort = await freePort();
    // No OIDC_CLIENT_ID, MS_BFF_PUBLIC_URL or MS_BFF_ROUTES: the frontends carry them.
    env = {
      OIDC_ISSUER: `http://127.0.0.1:${idpPort}`,
      BFF_JWT_SIGNING_KEY: JSON.stringify(key.privateJwk),
      MS_BFF_PROFILE: 'development',
      HOST: '127.0.0.1',
      PORT: String(port),
      MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
      MS_BFF_CONFIG: file,
      LOG_LEVEL: 'info',
    };
    const config = await loadConfig(env);
    const [bankConfig, shopConfig, adminConfig] = config.frontends.map((f) => f.config);
    assert.ok(bankConfig && shopConfig && adminConfig);
    idp = await startDevIdp({
      port: idpPort,
      clients: [
        client(bankConfig, {
          backchannel_logout_uri: `${bank}/auth/backchannel-logout`,
          backchannel_logout_session_required: true,
          // JARM and JAR are turned off by a reload below: the client may then get plain responses
          // and push plain parameters too.
          response_modes: ['query.jwt', 'query'],
          require_signed_request_object: false,
        }),
        // Only bank receives back-channel logouts: the IdP session all three share ends below.
        client(shopConfig, {
          backchannel_logout_uri: undefined,
          backchannel_logout_session_required: undefined,
        }),
        client(adminConfig, {
          backchannel_logout_uri: undefined,
          backchannel_logout_session_required: undefined,
        }),
      ],
    });
    // Whether each pushed authorization request carried a request object (JAR, RFC 9101 §5).
    idp.provider.on(
      'pushed_authorization_request.success',
      (ctx: { oidc: { body?: Record<string, unknown> } }) => {
        pushedWithRequestObject.push(typeof ctx.oidc.body?.request === 'string');
      },
    );
    metrics = new Metrics({ defaultMetrics: false });
    const log = { warn() {}, info() {} };
    built = await buildApp({
      config,
      store: new MemoryStore({ maxEntries: 10_000 }),
      idp: await IdpClient.create(config, metrics, log),
      createIdp: (c) => IdpClient.create(c, metrics, log),
      metrics,
      logger: { ...loggerOptions('info'), stream: logs.stream },
      loadConfig: () => loadConfig(env),
    });
    await built.app.listen({ host: '127.0.0.1', port });
    built.reloader.watch(file);
  });

  after(async () => {
    await built?.app.close();
    await idp?.close();
    await bankApi?.close();
    await shopApi?.close();
    echo?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const browser = new TestBrowser();

  it('logs in to two frontends side by side: own client, own routes, DPoP + JARM on one only', async () => {
    const bankCallback = await login(browser, bank);
    assert.ok(bankCallback.searchParams.has('response'), 'bank: a JARM response (query.jwt)');
    assert.ok(!bankCallback.searchParams.has('code'), 'bank: no plain code');
    const shopCallback = await login(browser, shop);
    assert.ok(shopCallback.searchParams.has('code'), 'shop: a plain response');
    assert.ok(!shopCallback.searchParams.has('response'));

    assert.ok(browser.cookie(bank, '__Host-bff-session'), 'bank: the default cookie name');
    assert.ok(browser.cookie(shop, '__Host-shop'), 'shop: its own cookie name');

    const bankSession = (await (await apiCall(browser, bank, '/auth/session')).json()) as {
      claims: { aud?: unknown };
    };
    assert.ok(bankSession.claims);
    assert.equal((await apiCall(browser, bank, '/api/accounts/x')).status, 200);
    assert.match(
      String(bankApi.requests.at(-1)?.headers.authorization),
      /^DPoP /,
      'bank: a DPoP-bound token',
    );
    assert.ok(bankApi.requests.at(-1)?.headers.dpop, 'bank: with a proof');
    assert.equal((await apiCall(browser, shop, '/api/cart/y')).status, 200);
    assert.match(String(shopApi.requests.at(-1)?.headers.authorization), /^Bearer /, 'shop: a Bearer token');

    // Routes are per frontend: bank has no cart, shop has no accounts.
    assert.equal(await errorCode(await apiCall(browser, bank, '/api/cart/y')), 'BFF_ROUTE_NOT_FOUND');
    assert.equal(await errorCode(await apiCall(browser, shop, '/api/accounts/x')), 'BFF_ROUTE_NOT_FOUND');
    // Audit lines name the frontend.
    const logins = logs.audit('login.succeeded').map((l) => l.frontend);
    assert.deepEqual(logins.slice(-2), ['bank', 'shop']);
  });

  it('refuses a cookie of one frontend at another (like no cookie: 401 on /api/**)', async () => {
    const bankCookie = browser.cookie(bank, '__Host-bff-session')?.value ?? '';
    const shopCookie = browser.cookie(shop, '__Host-shop')?.value ?? '';
    assert.ok(bankCookie && shopCookie);
    const replay = new TestBrowser();
    // Under the name the other frontend reads: the cookie is well-formed and MAC'd, yet no session.
    replay.setCookie(shop, '__Host-shop', bankCookie);
    const res = await apiCall(replay, shop, '/api/cart/y');
    assert.equal(res.status, 401);
    assert.equal(await errorCode(res), 'BFF_SESSION_REQUIRED');
    assert.equal((await apiCall(replay, shop, '/auth/session')).status, 401);
    const back = new TestBrowser();
    back.setCookie(bank, '__Host-bff-session', shopCookie);
    assert.equal((await apiCall(back, bank, '/api/accounts/x')).status, 401);
    // The admin frontend (same host as shop, other path) does not accept shop's session either.
    const sideways = new TestBrowser();
    sideways.setCookie(shop, '__Secure-bff-admin', shopCookie);
    assert.equal((await apiCall(sideways, shop, '/admin/api/cart/y')).status, 401);
  });

  it('serves a pathPrefix frontend under <pathPrefix>auth/** with a __Secure- cookie on that path', async () => {
    const callback = await loginUntilCallback(browser, admin, idp, '/admin/home');
    assert.equal(
      callback.pathname,
      '/admin/auth/callback',
      'redirect URI: <publicUrl><pathPrefix>auth/callback',
    );
    const done = await browser.request(callback);
    assert.equal(done.status, 302);
    assert.equal(done.headers.get('location'), '/admin/home');
    const setCookie = done.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^__Secure-bff-admin=/);
    assert.match(setCookie, /Path=\/admin\//);
    assert.match(setCookie, /Secure/);
    const session = (await (await apiCall(browser, shop, '/admin/auth/session')).json()) as {
      logoutUrl: string;
    };
    assert.match(session.logoutUrl, /^\/admin\/auth\/logout\?sid=/);
    assert.equal((await apiCall(browser, shop, '/admin/api/cart/z')).status, 200);
    assert.equal(shopApi.requests.at(-1)?.url, '/z');
    // Shop's own session is untouched by admin's login (its cookie has Path=/, admin's Path=/admin/).
    assert.equal((await apiCall(browser, shop, '/auth/session')).status, 200);
  });

  it('answers an unknown host with a 404 problem+json with a stable code; health stays served', async () => {
    const res = await withHost(port, '/auth/session', `elsewhere.example:${port}`);
    assert.equal(res.status, 404);
    assert.match(res.type, /application\/problem\+json/);
    assert.equal((JSON.parse(res.body) as { code: string }).code, 'BFF_FRONTEND_NOT_FOUND');
    assert.equal((await withHost(port, '/api/cart/y', 'elsewhere.example')).status, 404);
    assert.equal((await withHost(port, '/healthz', `elsewhere.example:${port}`)).status, 200);
  });

  it('proxies a WebSocket of a pathPrefix frontend with its own session, closed by its logout', async () => {
    const adminCookie = browser.cookie(shop, '__Secure-bff-admin')?.value ?? '';
    const shopCookie = browser.cookie(shop, '__Host-shop')?.value ?? '';
    assert.ok(adminCookie && shopCookie);
    const url = `ws://127.0.0.1:${port}/admin/api/live/feed`;
    const origin = shop;
    // Shop's session (same host, other frontend) opens nothing here.
    const refused = await wsConnect(url, { origin, cookie: `__Secure-bff-admin=${shopCookie}` });
    assert.ok(!(refused instanceof WebSocket) && refused.status === 401, JSON.stringify(refused));
    const ws = await wsConnect(url, { origin, cookie: `__Secure-bff-admin=${adminCookie}` });
    assert.ok(ws instanceof WebSocket, JSON.stringify(ws));
    const reply = once(ws, 'message');
    ws.send('hello');
    assert.equal(String((await reply)[0]), 'echo:hello');
    const closed = once(ws, 'close');
    // Logging out of admin (not shop) ends admin's socket: 4401, session ended.
    const out = await apiCall(browser, shop, '/admin/auth/logout', { method: 'POST' });
    assert.ok(out.status === 302 || out.status === 200, String(out.status));
    assert.equal((await closed)[0], 4401);
    assert.equal((await apiCall(browser, shop, '/auth/session')).status, 200, 'shop still signed in');
    // Signed in to admin again for the tests below.
    const again = await loginUntilCallback(browser, admin, idp, '/admin/home');
    assert.equal((await browser.request(again)).status, 302);
  });

  it("a back-channel logout for one client ends only that frontend's sessions", async () => {
    const ended = logs.audit('backchannel_logout').length;
    // The user signs out at the IdP: only bank-bff registered a back-channel logout URI, so the IdP
    // sends one logout token, aud bank-bff, naming the IdP session all three logins share.
    const done = await confirmEndSession(browser, new URL(`${idp.issuer}/session/end`));
    assert.ok(done.response.status < 400);
    const deadline = Date.now() + 5_000;
    while (logs.audit('backchannel_logout').length === ended) {
      assert.ok(Date.now() < deadline, 'no back-channel logout arrived');
      await new Promise((r) => setTimeout(r, 50));
    }
    const line = logs.audit('backchannel_logout').at(-1);
    assert.equal(line?.frontend, 'bank');
    assert.equal(line?.sessions_ended, 1);
    assert.equal((await apiCall(browser, bank, '/auth/session')).status, 401, 'bank: signed out');
    assert.equal((await apiCall(browser, shop, '/auth/session')).status, 200, 'shop: still signed in');
    assert.equal((await apiCall(browser, shop, '/admin/auth/session')).status, 200, 'admin: still signed in');
    // The login, callback, session and logout metrics name the frontend.
    const text = await metrics.render();
    assert.match(text, /^bff_backchannel_logouts_total\{outcome="success",frontend="bank"\} 1$/m);
    assert.match(text, /^bff_sessions_total\{event="ended",frontend="bank"\} 1$/m);
    assert.match(text, /^bff_sessions_total\{event="ended",frontend="admin"\} 1$/m, 'the admin logout above');
    assert.doesNotMatch(text, /^bff_sessions_total\{event="ended",frontend="shop"\}/m);
    for (const name of ['bank', 'shop', 'admin']) {
      assert.match(
        text,
        new RegExp(`^bff_login_started_total\\{outcome="success",frontend="${name}"\\} [1-9]`, 'm'),
      );
      assert.match(
        text,
        new RegExp(`^bff_callbacks_total\\{outcome="success",code="none",frontend="${name}"\\} [1-9]`, 'm'),
      );
      assert.match(
        text,
        new RegExp(`^bff_sessions_total\\{event="created",frontend="${name}"\\} [1-9]`, 'm'),
      );
    }
  });

  it('applies a changed file without a restart: a new route, JARM and JAR off, sessions kept', async () => {
    await login(browser, bank); // the IdP session ended above: a fresh one
    assert.equal(await errorCode(await apiCall(browser, shop, '/api/orders/1')), 'BFF_ROUTE_NOT_FOUND');
    // A login in flight across the reload: the IdP answered with JARM before it was switched off.
    const inFlight = new TestBrowser();
    const pending = await loginUntilCallback(inFlight, bank, idp, '/home');
    assert.ok(pending.searchParams.has('response'));
    const applied = logs.audit('config.reloaded').length;
    await rewrite(
      frontendsFile((f) => {
        (f[0] as { flags: Record<string, unknown> }).flags.jarm = false;
        (f[0] as { flags: Record<string, unknown> }).flags.jar = false;
        (f[1] as { routes: Record<string, unknown> }).routes.orders = shopApi.url;
      }),
      'applied',
    );
    const line = logs.audit('config.reloaded').at(applied);
    assert.equal(line?.outcome, 'applied');
    assert.deepEqual(String(line?.frontends_changed).split(',').sort(), ['bank', 'shop']);
    // Sessions survived the swap of both frontends' services.
    assert.equal((await apiCall(browser, bank, '/auth/session')).status, 200, 'bank session kept');
    assert.equal((await apiCall(browser, shop, '/auth/session')).status, 200, 'shop session kept');
    assert.equal((await apiCall(browser, shop, '/api/orders/1')).status, 200, 'the new route');
    assert.equal(shopApi.requests.at(-1)?.url, '/1');
    // JARM and JAR are off for bank now: the next login pushes plain parameters and gets a plain
    // authorization response.
    const pushed = pushedWithRequestObject.length;
    const plain = await loginUntilCallback(new TestBrowser(), bank, idp, '/home');
    assert.ok(plain.searchParams.has('code') && !plain.searchParams.has('response'), 'JARM off after reload');
    assert.deepEqual(pushedWithRequestObject.slice(pushed), [false], 'JAR off after reload');
    assert.equal((await inFlight.request(pending)).status, 302, 'the login started with JARM completes');
    // DPoP is still on: the token stays bound.
    assert.equal((await apiCall(browser, bank, '/api/accounts/q')).status, 200);
    assert.match(String(bankApi.requests.at(-1)?.headers.authorization), /^DPoP /);
  });

  it('a route kill switch answers a stable code until switched back on', async () => {
    await rewrite(
      frontendsFile((f) => {
        (f[0] as { flags: Record<string, unknown> }).flags.jarm = false;
        (f[1] as { routes: Record<string, unknown> }).routes.cart = { url: shopApi.url, enabled: false };
      }),
      'applied',
    );
    const off = await apiCall(browser, shop, '/api/cart/y');
    assert.equal(off.status, 503);
    assert.equal(await errorCode(off), 'BFF_ROUTE_DISABLED');
    // A plain login in flight (JARM is off for bank now) while the next reload switches JARM back on.
    const inFlight = new TestBrowser();
    const pending = await loginUntilCallback(inFlight, bank, idp, '/home');
    assert.ok(pending.searchParams.has('code'));
    await rewrite(frontendsFile(), 'applied');
    assert.equal((await inFlight.request(pending)).status, 302, 'the plain login in flight completes');
    // New logins are signed again, both ways.
    const pushed = pushedWithRequestObject.length;
    assert.ok((await loginUntilCallback(new TestBrowser(), bank, idp, '/home')).searchParams.has('response'));
    assert.deepEqual(pushedWithRequestObject.slice(pushed), [true], 'JAR on again');
    assert.equal((await apiCall(browser, shop, '/api/cart/y')).status, 200);
  });

  it('refuses a broken file and keeps serving the old configuration; every problem logged', async () => {
    await rewrite(
      frontendsFile((f) => {
        (f[1] as Record<string, unknown>).cookieName = 'not-host-prefixed';
        (f[2] as Record<string, unknown>).pathPrefix = 'no slash';
      }),
      'invalid',
    );
    const refusal = logs
      .records()
      .filter((r) => r.msg === 'configuration reload refused; the previous configuration stays')
      .at(-1) as { problems?: string[] } | undefined;
    assert.ok(refusal?.problems?.some((p) => p.startsWith('MS_BFF_CONFIG.frontends[1].cookieName')));
    assert.ok(refusal?.problems?.some((p) => p.startsWith('MS_BFF_CONFIG.frontends[2].pathPrefix')));
    assert.equal(logs.audit('config.reloaded').at(-1)?.outcome, 'invalid');
    assert.equal((await apiCall(browser, shop, '/api/cart/y')).status, 200, 'the old config serves');
    assert.equal((await apiCall(browser, shop, '/auth/session')).status, 200);
    // Not even valid JSON.
    await rewrite('{ "frontends": [', 'invalid');
    assert.equal((await apiCall(browser, shop, '/api/cart/y')).status, 200);
  });

  it('refuses a change that needs a restart (the store), naming it', async () => {
    const doc = JSON.parse(frontendsFile()) as Record<string, unknown>;
    doc.MS_BFF_REDIS_KEY_PREFIX = 'elsewhere:';
    await rewrite(JSON.stringify(doc), 'refused');
    const refusal = logs
      .records()
      .filter((r) => r.msg === 'configuration reload refused; the previous configuration stays')
      .at(-1) as { problems?: string[] } | undefined;
    assert.ok(
      refusal?.problems?.some((p) => /store .* needs a restart/.test(p)),
      JSON.stringify(refusal),
    );
    assert.equal((await apiCall(browser, shop, '/api/cart/y')).status, 200);
  });
});
