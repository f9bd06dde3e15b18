/**
 * Tokens and secrets never reach logs, error bodies or the browser. A full login, API call,
 * failed calls and logout run with the logger at `trace` writing into memory; then every token the
 * session held is searched for in everything logged and everything the browser received.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { loadConfig } from '../../src/config/load.js';
import { IdpClient } from '../../src/oauth/idp-client.js';
import { loggerOptions } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { buildApp } from '../../src/server/app.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { clientMetadata, freePort, makeClientKey } from '../helpers/bff-harness.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

describe('no secrets in logs or responses', () => {
  let idp: DevIdp;
  let upstream: RecordingUpstream;
  let close: () => Promise<void>;
  let url: string;
  let services: Awaited<ReturnType<typeof buildApp>>['services'];
  const lines: string[] = [];

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({ clients: [clientMetadata('bff-logs', `http://127.0.0.1:${port}`, key)] });
    upstream = await startRecordingUpstream();
    url = `http://127.0.0.1:${port}`;
    const config = await loadConfig({
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: 'bff-logs',
      BFF_JWT_SIGNING_KEY: JSON.stringify(key.privateJwk),
      MS_BFF_PROFILE: 'development',
      MS_BFF_PUBLIC_URL: url,
      MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
      MS_BFF_ROUTES: JSON.stringify({ echo: upstream.url, dead: `http://127.0.0.1:${await freePort()}` }),
    });
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = pino(loggerOptions('trace'), sink);
    const metrics = new Metrics({ defaultMetrics: false });
    const store = new MemoryStore();
    const idpClient = await IdpClient.create(config, metrics, logger);
    const built = await buildApp({
      config,
      store,
      idp: idpClient,
      metrics,
      logger: { ...loggerOptions('trace'), stream: sink },
    });
    services = built.services;
    await built.app.listen({ host: '127.0.0.1', port });
    close = async () => {
      await built.app.close();
      await store.close();
    };
  });
  after(async () => {
    await close?.();
    await upstream?.close();
    await idp?.close();
  });

  it('never logs or returns a token, code or cookie value', async () => {
    const browser = new TestBrowser();
    const received: string[] = [];
    const callback = await fullLogin(browser, url, idp);
    received.push(callback.headers.get('location') ?? '');
    const sessionCookie = browser.cookie(url, '__Host-bff-session')?.value ?? '';
    const session = await services.sessions.load(sessionCookie);
    assert.ok(session);
    const secrets = [
      session.data.accessToken,
      session.data.refreshToken,
      session.data.idToken,
      sessionCookie,
    ].filter((s): s is string => typeof s === 'string' && s.length > 0);
    assert.ok(secrets.length >= 3);

    for (const path of ['/auth/session', '/api/echo/ok', '/api/dead/x', '/api/nope/x']) {
      const res = await apiCall(browser, url, path, {
        headers: { authorization: `Bearer ${session.data.accessToken}` },
      });
      received.push(await res.text(), JSON.stringify([...res.headers]));
    }
    const noCsrf = await browser.request(`${url}/api/echo/x`);
    received.push(await noCsrf.text());
    const logout = await apiCall(browser, url, '/auth/logout', {
      method: 'POST',
      headers: { accept: 'application/json' },
    });
    const logoutBody = await logout.text();
    received.push(logoutBody.replace(/id_token_hint=[^&"]+/, ''));

    assert.ok(lines.length > 0, 'something was logged');
    const logged = lines.join('\n');
    for (const secret of secrets) {
      assert.ok(!logged.includes(secret), 'a credential reached the logs');
      for (const body of received) assert.ok(!body.includes(secret), 'a credential reached the browser');
    }
    assert.ok(!/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/.test(logged), 'no JWT-looking value in logs');
    // The one place a token legitimately reaches the browser: id_token_hint in the end-session URL
    // (OIDC RP-Initiated Logout §2), which is the IdP's own ID token, sent back to the IdP.
    assert.match(logoutBody, /id_token_hint=/);
  });
});
