/**
 * Attack (race): logging out while a refresh is in flight leaves a live refresh token behind
 * (security review, finding 7).
 *
 * A refresh sends the session's refresh token to the IdP; a rotating IdP consumes it and issues a
 * new one. If the user logs out meanwhile, logout revokes the refresh token it read (the old one,
 * already spent) and deletes the session; the refresh then finds no session to store its result
 * in and dropped the new refresh token without revoking it. At an IdP whose revocation ends only
 * the presented token (RFC 7009 §2.1 leaves the rest of the grant to the IdP), that token stayed
 * valid after the user had logged out.
 *
 * Fixed when: a refresh whose session ended while it ran revokes the refresh token it was issued
 * (discarding the result), and logout revokes the refresh token the store held when it removed the
 * session (the newest one, if a refresh stored it in between).
 */
import { strict as assert } from 'node:assert';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

describe('regression: logout racing a refresh', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let upstream: RecordingUpstream;
  let skewMs = 0;
  /** While set, token responses carrying a refresh token are held (after the IdP issued it) until released. */
  let hold: Promise<void> | undefined;
  const issued: string[] = [];
  const revoked: string[] = [];

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({
      clients: [clientMetadata('bff-race', `http://127.0.0.1:${port}`, key)],
      // A wrapper around oidc-provider's HTTP handler:
      // - a token response carrying a refresh token (so the IdP has issued it) reaches the BFF only
      //   once the test releases it (a slow token endpoint);
      // - revocation ends only the presented token, as RFC 7009 §2.1 permits (oidc-provider also
      //   revokes every other token of the grant, which would hide the leak): a spent refresh
      //   token then does not take its rotated successor with it.
      wrapHandler: (handler) => (req, res) => {
        if (req.method === 'POST' && req.url === '/token/revocation') {
          const chunks: Buffer[] = [];
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => {
            const token = new URLSearchParams(Buffer.concat(chunks).toString()).get('token') ?? '';
            revoked.push(token);
            void idp.provider.RefreshToken.find(token)
              .then((found) => found?.destroy())
              .then(() => res.writeHead(200).end());
          });
          return;
        }
        const gate = hold;
        if (gate && req.method === 'POST' && req.url === '/token') {
          const end = res.end.bind(res) as (chunk?: unknown) => ServerResponse;
          res.end = ((chunk?: unknown) => {
            const text = Buffer.isBuffer(chunk) ? chunk.toString() : typeof chunk === 'string' ? chunk : '';
            const token = /"refresh_token":"([^"]+)"/.exec(text)?.[1];
            if (token) issued.push(token);
            void gate.then(() => end(chunk));
            return res;
          }) as typeof res.end;
        }
        handler(req, res);
      },
    });
    upstream = await startRecordingUpstream();
    bff = await startBff({
      clock: () => Date.now() + skewMs,
      port,
      issuer: idp.issuer,
      clientId: 'bff-race',
      key,
      routes: { echo: upstream.url },
    });
  });
  after(async () => {
    await bff?.close();
    await upstream?.close();
    await idp?.close();
  });

  it('the refresh token issued to a refresh that lost the race with logout is revoked', async () => {
    const browser = new TestBrowser();
    assert.equal((await fullLogin(browser, bff.url, idp)).status, 302);
    skewMs += 301_000; // the access token is now stale: the next API call refreshes
    let release: () => void = () => undefined;
    hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const call = apiCall(browser, bff.url, '/api/echo/x');
    const deadline = Date.now() + 30_000;
    while (issued.length === 0 && Date.now() < deadline) await sleep(20);
    assert.equal(issued.length, 1, 'the refresh reached the IdP and was issued a new refresh token');
    const live = await idp.provider.RefreshToken.find(issued[0] as string);
    assert.ok(live && !live.isExpired && !live.consumed, 'the new refresh token is live at the IdP');

    const logout = await browser.request(`${bff.url}/auth/logout`, {
      method: 'POST',
      headers: { 'x-csrf': '1', 'sec-fetch-site': 'same-origin', accept: 'application/json' },
    });
    assert.equal(logout.status, 200, await logout.text());
    hold = undefined;
    release();

    const res = await call;
    assert.equal(res.status, 401, 'the refresh result is discarded: the session is gone');
    assert.equal((await browser.request(`${bff.url}/auth/session`)).status, 401);
    assert.ok(revoked.length >= 1, 'logout revoked a token');
    const survivor = await idp.provider.RefreshToken.find(issued[0] as string);
    assert.equal(survivor, undefined, 'the refresh token issued during logout was revoked');
  });
});
