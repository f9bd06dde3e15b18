/**
 * Prevents: logins failing when the IdP sends the authorization response cross-site.
 *
 * Failure it guards against: with `response_mode=form_post` (or `form_post.jwt`) a real browser does
 * not send the SameSite=Lax login binding cookie on the IdP's cross-site POST to /auth/callback (and
 * with MS_BFF_COOKIE_SAMESITE=strict not even on the redirect), so every such login ended in
 * BFF_CALLBACK_STATE_MISMATCH. Now such an arrival gets a relay page that re-posts the same fields
 * same-origin; the relay's own submission (or any same-origin request) is never relayed again and
 * still needs the binding, and non-browser clients get the plain answer. Chromium proves the whole
 * flow in test/e2e/browser-cross-site.test.ts; this pins the server's decisions.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';

describe('regression: cross-site callback without the binding cookie', () => {
  let idp: DevIdp;
  let bff: RunningBff;

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({ clients: [clientMetadata('relay', `http://127.0.0.1:${port}`, key)] });
    bff = await startBff({ port, issuer: idp.issuer, clientId: 'relay', key });
  });
  after(async () => {
    await bff?.close();
    await idp?.close();
  });

  const form = (extra: Record<string, string> = {}) =>
    new URLSearchParams({ code: 'c"><script>alert(1)</script>', state: 's', iss: 'x', ...extra });

  it('answers a cross-site form post with a relay page that re-posts the fields same-origin', async () => {
    const res = await fetch(`${bff.url}/auth/callback`, {
      method: 'POST',
      headers: { 'sec-fetch-site': 'cross-site', origin: idp.issuer },
      body: form(),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const csp = res.headers.get('content-security-policy') ?? '';
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    assert.ok(nonce, `a per-response script nonce: ${csp}`);
    assert.match(csp, /form-action 'self'/);
    const html = await res.text();
    assert.match(html, /<form id="relay" method="post" action="\/auth\/callback">/);
    assert.ok(html.includes(`<script nonce="${nonce}">`));
    assert.ok(!html.includes('<script>alert(1)'), 'field values are escaped');
    assert.ok(html.includes('name="code" value="c&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;"'));
    assert.ok(html.includes('name="state" value="s"'));
  });

  it('answers a cross-site redirect (Strict cookie not sent) with a relay that reads the URL', async () => {
    const res = await fetch(`${bff.url}/auth/callback?${form().toString()}`, {
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.ok(!html.includes('alert(1)'), 'nothing from the URL is written into the page');
    assert.match(html, /location\.search/);
  });

  it('never relays the relay: a same-origin post without the binding fails the binding check', async () => {
    const res = await fetch(`${bff.url}/auth/callback`, {
      method: 'POST',
      headers: { 'sec-fetch-site': 'same-origin', origin: bff.config.publicOrigin },
      body: form({ iss: idp.issuer }),
    });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /BFF_CALLBACK_(STATE_MISMATCH|TRANSACTION_EXPIRED)/);
  });

  it('gives non-browser clients (no Fetch Metadata, no Origin) the plain answer', async () => {
    const res = await fetch(`${bff.url}/auth/callback?${form({ iss: idp.issuer }).toString()}`);
    assert.equal(res.status, 400);
  });
});
