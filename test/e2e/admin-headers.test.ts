/**
 * The admin listener (MS_BFF_ADMIN_HOST/PORT) and the security headers of /auth/** responses.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { DevIdp } from '../../src/dev/idp.js';
import { AUTH_CSP } from '../../src/server/auth-headers.js';
import type { RunningBff } from '../helpers/bff-harness.js';
import { apiCall, fullLogin, startLogin } from '../helpers/flows.js';
import { type Stack, startStack } from '../helpers/stack.js';
import { TestBrowser, type TestResponse } from '../helpers/test-browser.js';

describe('admin listener', () => {
  let withAdmin: RunningBff;
  let without: RunningBff;
  let stack: Stack;

  before(async () => {
    stack = await startStack({
      clientId: 'bff-admin',
      env: { MS_BFF_ADMIN_PORT: '0' },
      others: { without: { clientId: 'bff-noadmin' } },
    });
    withAdmin = stack.bff;
    without = stack.others.without!;
  });
  after(async () => {
    await stack?.close();
  });

  it('serves /metrics only on the admin port when MS_BFF_ADMIN_PORT is set', async () => {
    const b = new TestBrowser();
    assert.ok(withAdmin.adminUrl);
    const pub = await b.request(`${withAdmin.url}/metrics`);
    assert.equal(pub.status, 404, 'not on the public port');
    const admin = await b.request(`${withAdmin.adminUrl}/metrics`);
    assert.equal(admin.status, 200);
    assert.match(await admin.text(), /^# HELP par_requests_total/m);
    // Without an admin port, /metrics stays public (compatibility).
    assert.equal((await b.request(`${without.url}/metrics`)).status, 200);
    assert.equal(without.adminUrl, undefined);
  });

  it('keeps /healthz and a summary /readyz public; the detailed report is on the admin port', async () => {
    const b = new TestBrowser();
    assert.equal((await b.request(`${withAdmin.url}/healthz`)).status, 200);
    const summary = await (await b.request(`${withAdmin.url}/readyz`)).json<Record<string, unknown>>();
    assert.equal(summary.status, 'ready');
    assert.equal(typeof summary.fips_mode, 'boolean');
    assert.equal(summary.keys, undefined, 'no key ids on the public port');
    assert.equal(summary.fips, undefined);
    const detail = await (
      await b.request(`${withAdmin.adminUrl}/readyz`)
    ).json<{
      checks: Record<string, { ok: boolean }>;
      keys: { signing: { kid: string; state: string }[] };
      fips: { fips_mode: boolean; openssl_version: string; required: boolean };
    }>();
    assert.equal(detail.checks.store?.ok, true);
    assert.ok(detail.checks.idp, 'the IdP check');
    assert.ok((detail as unknown as { jwks: object }).jwks, 'the JWKS age');
    assert.equal(detail.keys.signing[0]?.kid, withAdmin.config.signingKey?.kid);
    assert.equal(typeof detail.fips.fips_mode, 'boolean');
    assert.ok(detail.fips.openssl_version, 'FIPS evidence on the admin port');
    assert.equal(detail.fips.required, false);
    assert.equal((await b.request(`${withAdmin.adminUrl}/auth/login`)).status, 404, 'nothing else there');
  });
});

describe('security headers of /auth/** responses', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let stack: Stack;

  before(async () => {
    stack = await startStack({ clientId: 'bff-hdr' });
    ({ idp, bff } = stack);
  });
  after(async () => {
    await stack?.close();
  });

  function assertAuthHeaders(res: TestResponse, what: string) {
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', what);
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer', what);
    assert.equal(res.headers.get('cache-control'), 'no-store', what);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /frame-ancestors 'none'/, `${what}: ${csp}`);
    assert.match(csp, /default-src 'none'/, `${what}: ${csp}`);
    assert.equal(res.headers.get('strict-transport-security'), null, `${what}: no HSTS outside production`);
  }

  it('sets CSP, nosniff, no-referrer and no-store on every /auth response, errors included', async () => {
    const browser = new TestBrowser();
    const start = await startLogin(browser, bff.url, idp.issuer);
    assertAuthHeaders(start.response, 'login redirect');
    assert.equal(start.response.headers.get('content-security-policy'), AUTH_CSP);
    const badReturn = await browser.request(`${bff.url}/auth/login?returnTo=https://evil.example`);
    assert.equal(badReturn.status, 400);
    assertAuthHeaders(badReturn, 'login error page');
    const callback = await fullLogin(browser, bff.url, idp);
    assertAuthHeaders(callback, 'callback');
    const session = await apiCall(browser, bff.url, '/auth/session');
    assert.equal(session.status, 200);
    assertAuthHeaders(session, 'session JSON');
    assertAuthHeaders(await browser.request(`${bff.url}/auth/nope`), 'unknown /auth path');
    const logout = await apiCall(browser, bff.url, '/auth/logout', { method: 'POST' });
    assertAuthHeaders(logout, 'logout');
  });
});
