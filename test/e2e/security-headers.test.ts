/**
 * The global security headers (nosniff, no Referer, no framing) are on every kind of response the BFF
 * sends: JSON problems, HTML error pages, health and metrics, the callback relay page, redirects and
 * proxied upstream responses that send none. An upstream's own values of these headers are its to
 * choose and are kept (see proxy response headers in the README).
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
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

describe('global security headers', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let upstream: RecordingUpstream;

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey();
    idp = await startDevIdp({ clients: [clientMetadata('headers', `http://127.0.0.1:${port}`, key)] });
    upstream = await startRecordingUpstream();
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'headers',
      key,
      routes: { open: { url: upstream.url, token: 'none' } },
    });
  });
  after(async () => {
    await bff?.close();
    await upstream?.close();
    await idp?.close();
  });

  const cases: [string, string, RequestInit][] = [
    ['a JSON problem (no session)', '/auth/session', { headers: { accept: 'application/json' } }],
    ['an HTML error page', '/auth/callback?state=x', {}],
    ['an unknown path', '/nothing-here', {}],
    ['liveness', '/healthz', {}],
    ['readiness', '/readyz', {}],
    ['metrics', '/metrics', {}],
    ['the login redirect', '/auth/login', { redirect: 'manual' }],
    [
      'the callback relay page',
      '/auth/callback',
      {
        method: 'POST',
        headers: { 'sec-fetch-site': 'cross-site' },
        body: new URLSearchParams({ code: 'c' }),
      },
    ],
    ['a proxied upstream response', '/api/open/x', { headers: { 'x-csrf': '1' } }],
  ];
  for (const [name, path, init] of cases) {
    it(`are on ${name}`, async () => {
      // An upstream that sends none of them: the BFF's values fill in.
      if (path.startsWith('/api/')) upstream.behave({ kind: 'status', status: 200, body: 'ok' });
      const res = await fetch(`${bff.url}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', `${path}: nosniff`);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', `${path}: referrer-policy`);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', `${path}: x-frame-options`);
    });
  }

  it('keep an upstream’s own values on a proxied response (the BFF only fills in what is missing)', async () => {
    upstream.behave({
      kind: 'status',
      status: 200,
      body: 'ok',
      headers: { 'x-frame-options': 'SAMEORIGIN', 'referrer-policy': 'strict-origin' },
    });
    const res = await fetch(`${bff.url}/api/open/x`, {
      headers: { 'x-csrf': '1' },
      signal: AbortSignal.timeout(10_000),
    });
    await res.arrayBuffer();
    assert.equal(res.headers.get('x-frame-options'), 'SAMEORIGIN');
    assert.equal(res.headers.get('referrer-policy'), 'strict-origin');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  });
});
