/**
 * The security headers of every /auth/** response (issue 11 item 5), besides the ones
 * admin-headers.test.ts checks: the relay pages (a script allowed only by its per-response nonce),
 * error pages (an inline style allowed only by its hash), problem+json errors, a 429, both logouts,
 * the back-channel endpoint. Every inline script or style of an HTML page must be allowed by the
 * page's CSP through a nonce or a hash; nothing may use 'unsafe-inline'.
 *
 * The /auth/** values are the auth hook's, not defaults: inside a host application whose own hook
 * sets a weaker Referrer-Policy, Cache-Control and CSP on every response, /auth/** still answers
 * no-referrer, no-store and the strict CSP, while the host's other responses keep the host's values
 * (the global defaults only fill in missing headers, so they cannot be what /auth/** relies on).
 * HSTS is sent in the production profile with an https public URL, and not otherwise.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config/load.js';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { fapiBff } from '../../src/index.js';
import { AUTH_CSP, HSTS } from '../../src/server/auth-headers.js';
import {
  bffEnv,
  type ClientKey,
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { apiCall, fullLogin, startLogin } from '../helpers/flows.js';
import { TestBrowser, type TestResponse } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

/** The sources a CSP directive allows (falling back to default-src, CSP3 §6.1). */
function sources(csp: string, directive: string): string[] {
  const directives = new Map(
    csp
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([name, ...values]) => [name?.toLowerCase() ?? '', values]),
  );
  return directives.get(directive) ?? directives.get('default-src') ?? [];
}

/** Asserts the /auth/** headers, and that every inline script/style is allowed by nonce or hash. */
async function assertAuthHeaders(res: TestResponse, what: string, opts: { hsts?: boolean } = {}) {
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff', `${what}: nosniff`);
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer', `${what}: referrer-policy`);
  assert.equal(res.headers.get('cache-control'), 'no-store', `${what}: cache-control`);
  assert.equal(
    res.headers.get('strict-transport-security'),
    opts.hsts ? HSTS : null,
    `${what}: HSTS ${opts.hsts ? 'in production' : 'only in production'}`,
  );
  const csp = res.headers.get('content-security-policy') ?? '';
  assert.match(csp, /(^|;)\s*default-src 'none'/, `${what}: default-src 'none' (${csp})`);
  assert.match(csp, /(^|;)\s*frame-ancestors 'none'/, `${what}: frame-ancestors 'none'`);
  assert.match(csp, /(^|;)\s*base-uri 'none'/, `${what}: base-uri 'none'`);
  assert.doesNotMatch(csp, /'unsafe-inline'|'unsafe-eval'|\*/, `${what}: nothing unsafe (${csp})`);
  if (!(res.headers.get('content-type') ?? '').startsWith('text/html')) return;
  const html = await res.text();
  for (const [tag, directive] of [
    ['script', 'script-src'],
    ['style', 'style-src'],
  ] as const) {
    for (const m of html.matchAll(new RegExp(`<${tag}([^>]*)>([\\s\\S]*?)</${tag}>`, 'gi'))) {
      const attrs = m[1] ?? '';
      const nonce = /\snonce="([^"]+)"/.exec(attrs)?.[1];
      const hash = `'sha256-${createHash('sha256')
        .update(m[2] ?? '')
        .digest('base64')}'`;
      const allowed = sources(csp, directive);
      assert.ok(
        (nonce !== undefined && allowed.includes(`'nonce-${nonce}'`)) || allowed.includes(hash),
        `${what}: an inline <${tag}> allowed by ${nonce ? 'its nonce' : 'its hash'} (${directive}: ${allowed.join(' ')})`,
      );
    }
  }
}

describe('/auth/** security headers', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let prod: RunningBff;
  let host: FastifyInstance;
  let hostUrl: string;
  const clients: Record<string, unknown>[] = [];
  let key: ClientKey;
  let upstream: RecordingUpstream;

  before(async () => {
    key = await makeClientKey('ES256');
    const [devPort, prodPort, hostPort, idpPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const issuer = `http://127.0.0.1:${idpPort}`;
    clients.push(
      clientMetadata('hdr-dev', `http://127.0.0.1:${devPort}`, key),
      clientMetadata('hdr-prod', `https://localhost:${prodPort}`, key),
      clientMetadata('hdr-host', `http://127.0.0.1:${hostPort}/bff`, key),
    );
    idp = await startDevIdp({ port: idpPort, clients });
    upstream = await startRecordingUpstream();
    bff = await startBff({
      port: devPort,
      issuer,
      clientId: 'hdr-dev',
      key,
      routes: { open: { url: upstream.url, token: 'none' } },
      env: { MS_BFF_LOGIN_TRANSACTIONS_PER_BROWSER: '2' },
    });
    // Production behind a TLS-terminating proxy: the public URL is https, the BFF listens on HTTP.
    prod = await startBff({
      port: prodPort,
      issuer,
      clientId: 'hdr-prod',
      key,
      env: {
        MS_BFF_PROFILE: 'production',
        MS_BFF_PUBLIC_URL: `https://localhost:${prodPort}`,
        MS_BFF_ALLOW_HTTP_HOSTS: '127.0.0.1',
      },
    });

    // A host application with its own, weaker, policy on every response.
    host = Fastify({ logger: false });
    host.addHook('onSend', async (_request, reply) => {
      reply.header('referrer-policy', 'strict-origin-when-cross-origin');
      reply.header('cache-control', 'public, max-age=60');
      reply.header('content-security-policy', "default-src 'self' 'unsafe-inline'");
    });
    host.get('/', async () => 'the host');
    const env = bffEnv({ port: hostPort, issuer, clientId: 'hdr-host', key });
    await host.register(fapiBff, {
      prefix: '/bff',
      config: await loadConfig({ ...env, MS_BFF_PUBLIC_URL: `http://127.0.0.1:${hostPort}` }),
    });
    await host.listen({ host: '127.0.0.1', port: hostPort });
    hostUrl = `http://127.0.0.1:${hostPort}`;
  });
  after(async () => {
    await host?.close();
    await bff?.close();
    await prod?.close();
    await upstream?.close();
    await idp?.close();
  });

  it('are on every kind of /auth response: pages, redirects, JSON, errors, 429', async () => {
    const browser = new TestBrowser();
    const nav = { 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate' };
    await assertAuthHeaders((await startLogin(browser, bff.url, idp.issuer)).response, 'login redirect');
    await assertAuthHeaders(
      await browser.request(`${bff.url}/auth/login?returnTo=https://evil.example`, { headers: nav }),
      'login error page',
    );
    // The relay pages: a cross-site arrival without the binding cookie (form post, and redirect).
    const relayPost = await new TestBrowser().request(`${bff.url}/auth/callback`, {
      method: 'POST',
      headers: { 'sec-fetch-site': 'cross-site', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ code: 'c', state: 's' }),
    });
    assert.match(await relayPost.text(), /<form id="relay"/);
    await assertAuthHeaders(relayPost, 'relay page (form post)');
    const relayGet = await new TestBrowser().request(`${bff.url}/auth/callback`, {
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    assert.match(await relayGet.text(), /<script nonce=/);
    await assertAuthHeaders(relayGet, 'relay page (redirect, e.g. fragment.jwt)');
    const callbackError = await browser.request(`${bff.url}/auth/callback?state=x&code=y`, { headers: nav });
    assert.ok(callbackError.status >= 400);
    assert.match(await callbackError.text(), /<style/);
    await assertAuthHeaders(callbackError, 'callback error page');

    const signedIn = new TestBrowser();
    await assertAuthHeaders(await fullLogin(signedIn, bff.url, idp), 'callback redirect');
    const session = await apiCall(signedIn, bff.url, '/auth/session');
    assert.equal(session.status, 200);
    await assertAuthHeaders(session, 'session JSON');
    const { logoutUrl } = await session.json<{ logoutUrl: string }>();
    const noSession = await apiCall(new TestBrowser(), bff.url, '/auth/session');
    assert.equal(noSession.status, 401);
    await assertAuthHeaders(noSession, 'session problem+json');
    const jsonLogout = await apiCall(signedIn, bff.url, '/auth/logout', {
      method: 'POST',
      headers: { accept: 'application/json' },
    });
    assert.equal(jsonLogout.status, 200);
    await assertAuthHeaders(jsonLogout, 'logout JSON');
    await fullLogin(signedIn, bff.url, idp);
    const { logoutUrl: second } = await (
      await apiCall(signedIn, bff.url, '/auth/session')
    ).json<{
      logoutUrl: string;
    }>();
    assert.notEqual(second, logoutUrl);
    const getLogout = await signedIn.request(`${bff.url}${second}`, { headers: nav });
    assert.equal(getLogout.status, 302);
    await assertAuthHeaders(getLogout, 'logout redirect (GET with sid)');

    const backchannel = await new TestBrowser().request(`${bff.url}/auth/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'logout_token=x',
    });
    assert.equal(backchannel.status, 400);
    await assertAuthHeaders(backchannel, 'back-channel logout error');
    await assertAuthHeaders(await browser.request(`${bff.url}/auth/nope`), 'unknown /auth path');

    // The per-browser transaction cap (2 here): the third open login is a 429 page.
    const busy = new TestBrowser();
    for (let i = 0; i < 2; i++) assert.equal((await startLogin(busy, bff.url, idp.issuer)).stopped, true);
    const refused = await busy.request(`${bff.url}/auth/login`, { headers: nav });
    assert.equal(refused.status, 429);
    await assertAuthHeaders(refused, '429');
  });

  it('win over a host application’s weaker Referrer-Policy, Cache-Control and CSP', async () => {
    const browser = new TestBrowser();
    const hostPage = await browser.request(`${hostUrl}/`);
    assert.equal(
      hostPage.headers.get('referrer-policy'),
      'strict-origin-when-cross-origin',
      'the host’s hook runs',
    );
    assert.equal(hostPage.headers.get('cache-control'), 'public, max-age=60');
    const login = await startLogin(browser, `${hostUrl}/bff`, idp.issuer);
    assert.ok(login.stopped, `login redirected to the IdP (${login.response.status})`);
    await assertAuthHeaders(login.response, 'login redirect inside a host app');
    assert.equal(login.response.headers.get('content-security-policy'), AUTH_CSP);
    await assertAuthHeaders(
      await apiCall(browser, `${hostUrl}/bff`, '/auth/session'),
      'session 401 inside a host app',
    );
    const health = await browser.request(`${hostUrl}/bff/healthz`);
    assert.equal(
      health.headers.get('referrer-policy'),
      'strict-origin-when-cross-origin',
      'not /auth: the host’s',
    );
  });

  it('include HSTS in the production profile with an https public URL', async () => {
    const browser = new TestBrowser();
    const login = await browser.request(`http://127.0.0.1:${prod.config.port}/auth/login`, {
      headers: { 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate' },
    });
    assert.equal(login.status, 302, await login.text());
    await assertAuthHeaders(login, 'production login redirect', { hsts: true });
    const session = await browser.request(`http://127.0.0.1:${prod.config.port}/auth/session`, {
      headers: { 'x-csrf': '1', 'sec-fetch-site': 'same-origin' },
    });
    await assertAuthHeaders(session, 'production 401', { hsts: true });
  });

  it('are not forced on proxied API responses: the upstream’s own security headers are kept', async () => {
    const own = {
      'content-security-policy': "default-src 'self'",
      'referrer-policy': 'same-origin',
      'cache-control': 'public, max-age=60',
      'permissions-policy': 'geolocation=()',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-site',
      'x-frame-options': 'SAMEORIGIN',
    };
    upstream.behave({ kind: 'status', status: 200, body: 'ok', headers: own });
    const res = await apiCall(new TestBrowser(), bff.url, '/api/open/x');
    assert.equal(res.status, 200);
    for (const [name, value] of Object.entries(own)) {
      if (name === 'content-security-policy') continue;
      assert.equal(res.headers.get(name), value, `${name} kept`);
    }
    // Its CSP is kept, and the proxy's sandbox policy is added beside it (both are enforced).
    assert.match(res.headers.get('content-security-policy') ?? '', /^default-src 'self', sandbox;/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', 'a missing one is filled in');
    assert.equal(res.headers.get('strict-transport-security'), null);
  });
});
