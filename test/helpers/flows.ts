import { strict as assert } from 'node:assert';
import type { DevIdp } from '../../src/dev/idp.js';
import { loginAtDevIdp, type TestBrowser, type TestResponse } from './test-browser.js';

export const ALICE = { username: 'alice', password: 'alice-password' } as const;

/** Start a login at the BFF and stop at the IdP's authorization URL (returned unrequested). */
export async function startLogin(
  browser: TestBrowser,
  bffUrl: string,
  issuer: string,
  returnTo = '/after-login',
) {
  const idpOrigin = new URL(issuer).origin;
  const result = await browser.navigate(`${bffUrl}/auth/login?returnTo=${encodeURIComponent(returnTo)}`, {
    stopWhen: (u) => u.origin === idpOrigin,
  });
  return result;
}

/** Log in at the dev IdP and return the callback URL the IdP sent the browser to (not yet requested). */
export async function loginUntilCallback(
  browser: TestBrowser,
  bffUrl: string,
  idp: DevIdp,
  returnTo?: string,
): Promise<URL> {
  const start = await startLogin(browser, bffUrl, idp.issuer, returnTo);
  if (!start.stopped)
    throw new Error(
      `login did not redirect to the IdP: ${start.response.status} ${await start.response.text()}`,
    );
  const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
    u.href.startsWith(`${bffUrl}/auth/callback`),
  );
  return done.url;
}

/**
 * A login at an IdP that answers without a login form (the hostile IdP), stopped at its answer:
 * the code and state it issued for this browser (the callback not yet requested).
 */
export async function authorizeUntilCallback(
  browser: TestBrowser,
  bffUrl: string,
): Promise<{ code: string; state: string }> {
  const res = await browser.navigate(`${bffUrl}/auth/login?returnTo=/ok`, {
    stopWhen: (u) => u.href.startsWith(`${bffUrl}/auth/callback`),
  });
  assert.ok(res.stopped, `login reached the IdP's answer (${res.response.status})`);
  const code = res.url.searchParams.get('code');
  const state = res.url.searchParams.get('state');
  assert.ok(code && state);
  return { code, state };
}

/** A complete login: returns the callback response (a 302 to returnTo with the session cookie). */
export async function fullLogin(
  browser: TestBrowser,
  bffUrl: string,
  idp: DevIdp,
  returnTo?: string,
): Promise<TestResponse> {
  const callback = await loginUntilCallback(browser, bffUrl, idp, returnTo);
  return browser.request(callback);
}

/** An SPA-style API call: same-origin fetch with the CSRF header. */
export function apiCall(
  browser: TestBrowser,
  bffUrl: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  return browser.request(`${bffUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: { 'x-csrf': '1', 'sec-fetch-site': 'same-origin', ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
}

/** The stable error code of a refusal: from problem+json, or from the HTML error page. */
export async function errorCode(res: TestResponse): Promise<string | undefined> {
  const text = await res.text();
  if ((res.headers.get('content-type') ?? '').includes('json'))
    return (JSON.parse(text) as { code?: string }).code;
  return /<code>(BFF_[A-Z_]+)<\/code>/.exec(text)?.[1];
}
