/**
 * Audit events (docs/audit.md): each is emitted by the flow that causes it, as one JSON log line
 * with `audit: true`, its stable `event` name, only documented fields, the request's id and trace
 * id, and never a token.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { AUDIT_COMMON_FIELDS, AUDIT_EVENTS, type AuditEvent } from '../../src/observability/audit.js';
import {
  clientMetadata,
  freePort,
  LogSink,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { apiCall, fullLogin, loginUntilCallback } from '../helpers/flows.js';
import { confirmEndSession, TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

const CLIENT_ID = 'bff-audit';

describe('audit events', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let upstream: RecordingUpstream;
  const logs = new LogSink();
  let offset = 0;
  const secrets: string[] = [];

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    const publicUrl = `http://127.0.0.1:${port}`;
    idp = await startDevIdp({
      clients: [
        {
          ...clientMetadata(CLIENT_ID, publicUrl, key),
          backchannel_logout_uri: `${publicUrl}/auth/backchannel-logout`,
          backchannel_logout_session_required: true,
        },
      ],
    });
    upstream = await startRecordingUpstream();
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: CLIENT_ID,
      key,
      routes: { echo: upstream.url, svc: { url: upstream.url, serviceAudience: 'urn:test:svc' } },
      env: { MS_BFF_SESSION_ABSOLUTE_TIMEOUT: '36000' },
      logs,
      clock: () => Date.now() + offset,
    });
  });
  after(async () => {
    await bff?.close();
    await upstream?.close();
    await idp?.close();
  });

  async function login(browser: TestBrowser) {
    assert.equal((await fullLogin(browser, bff.url, idp)).status, 302);
    const cookie = browser.cookie(bff.url, '__Host-bff-session')?.value ?? '';
    const session = await bff.services.sessions.load(cookie);
    assert.ok(session);
    for (const t of [session.data.accessToken, session.data.refreshToken, session.data.idToken, cookie])
      if (t) secrets.push(t);
    return session;
  }

  it('emits each event with its documented fields', async () => {
    const browser = new TestBrowser();
    const session = await login(browser);

    // login.failed: the same callback a second time (the transaction is single-use).
    const other = new TestBrowser();
    const callbackUrl = await loginUntilCallback(other, bff.url, idp);
    assert.equal((await other.request(callbackUrl)).status, 302);
    assert.equal((await other.request(callbackUrl)).status, 400);

    // logout.
    const third = new TestBrowser();
    await login(third);
    const out = await apiCall(third, bff.url, '/auth/logout', {
      method: 'POST',
      headers: { accept: 'application/json' },
    });
    assert.equal(out.status, 200);

    // backchannel_logout: the user signs out at the IdP, which tells the BFF (before the clock moves:
    // the logout token is checked against it).
    const fourth = new TestBrowser();
    await login(fourth);
    const ended = await confirmEndSession(fourth, new URL(`${idp.issuer}/session/end`));
    assert.ok(ended.response.status < 400);

    // session.refreshed: the access token is due, an API call refreshes it.
    offset += 3600_000;
    assert.equal((await apiCall(browser, bff.url, '/api/echo/x')).status, 200);

    // refresh.failed + session.expired: the refresh token was revoked at the IdP.
    const refreshed = await bff.services.sessions.reload(session.key);
    assert.ok(refreshed?.data.refreshToken);
    secrets.push(refreshed.data.refreshToken, refreshed.data.accessToken);
    await bff.services.idp.revoke(refreshed.data.refreshToken, 'refresh_token');
    offset += 3600_000;
    assert.equal((await apiCall(browser, bff.url, '/api/echo/x')).status, 401);

    // csrf.refused: no X-CSRF header.
    assert.equal((await browser.request(`${bff.url}/api/echo/x`)).status, 403);

    // dpop.refused: a service caller with a malformed proof.
    const svc = await new TestBrowser().request(`${bff.url}/api/svc/x`, {
      headers: { authorization: 'DPoP not-a-token', dpop: 'not-a-proof' },
    });
    assert.equal(svc.status, 401);

    // session.expired by the absolute lifetime.
    const fifth = new TestBrowser();
    await login(fifth);
    offset += 36000_000;
    assert.equal((await apiCall(fifth, bff.url, '/auth/session')).status, 401);

    const audit = logs.audit();
    const seen = new Set(audit.map((a) => a.event as string));
    for (const event of Object.keys(AUDIT_EVENTS) as AuditEvent[]) {
      // Emitted by their own features (e2e/audit-key-rotated, e2e/frontends, e2e/sessions-revoke).
      if (event === 'key.rotated' || event === 'config.reloaded' || event === 'session.revoked') continue;
      assert.ok(seen.has(event), `${event} emitted (seen: ${[...seen].join(', ')})`);
    }
    for (const line of audit) {
      const event = line.event as AuditEvent;
      const allowed = new Set<string>([
        ...Object.keys(AUDIT_COMMON_FIELDS),
        ...AUDIT_EVENTS[event].fields,
        'level',
        'time',
        'pid',
        'hostname',
        'msg',
      ]);
      for (const field of Object.keys(line))
        assert.ok(allowed.has(field), `${event}: field ${field} is documented`);
      assert.equal(line.frontend, 'default');
      assert.equal(typeof line.request_id, 'string', `${event} carries the request id`);
      assert.match(String(line.trace_id), /^[0-9a-f]{32}$/, `${event} carries the trace id`);
    }
    const one = (event: string) => audit.find((a) => a.event === event) ?? {};
    assert.equal(one('login.succeeded').sub, 'alice');
    assert.match(String(one('login.succeeded').session), /^[A-Za-z0-9_-]{16}$/);
    assert.deepEqual(
      [one('login.failed').stage, one('login.failed').code],
      ['callback', 'BFF_CALLBACK_TRANSACTION_EXPIRED'],
    );
    assert.equal(one('session.refreshed').session, one('login.succeeded').session);
    assert.equal(one('refresh.failed').code, 'BFF_REFRESH_FAILED');
    const expiredReasons = audit.filter((a) => a.event === 'session.expired').map((a) => a.reason);
    assert.deepEqual(expiredReasons.sort(), ['absolute_timeout', 'refresh_rejected']);
    assert.equal(one('csrf.refused').reason, 'header');
    assert.equal(one('dpop.refused').route, 'svc');
    assert.equal(one('logout').revocation, 'success');
    assert.equal(one('backchannel_logout').sessions_ended, 1);
    assert.match(String(one('backchannel_logout').sid), /^[A-Za-z0-9_-]{16}$/, 'sid is hashed');

    const text = logs.lines.join('\n');
    for (const s of secrets) assert.ok(!text.includes(s), 'no token in any log line');

    const metrics = await bff.metrics.render();
    assert.match(metrics, /bff_audit_events_total\{event="login.succeeded"\} [1-9]/);
  });

  it('hashes the subject with MS_BFF_AUDIT_SUB=hash (stable, keyed, not the sub)', async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    const idp2 = await startDevIdp({
      clients: [clientMetadata('bff-audit-h', `http://127.0.0.1:${port}`, key)],
    });
    const sink = new LogSink();
    const sessionKey = randomBytes(32).toString('base64url');
    const bff2 = await startBff({
      port,
      issuer: idp2.issuer,
      clientId: 'bff-audit-h',
      key,
      env: { MS_BFF_AUDIT_SUB: 'hash', MS_BFF_SESSION_KEYS: sessionKey },
      logs: sink,
    });
    try {
      await fullLogin(new TestBrowser(), bff2.url, idp2);
      await fullLogin(new TestBrowser(), bff2.url, idp2);
      const subs = sink.audit('login.succeeded').map((l) => l.sub);
      assert.equal(subs.length, 2);
      assert.notEqual(subs[0], 'alice');
      assert.match(String(subs[0]), /^[A-Za-z0-9_-]{22}$/);
      assert.equal(subs[0], subs[1], 'the same user hashes the same');
      assert.equal(bff2.services.audit.subject('alice'), subs[0]);
    } finally {
      await bff2.close();
      await idp2.close();
    }
  });
});
