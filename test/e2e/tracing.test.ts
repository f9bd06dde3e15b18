/**
 * Tracing end to end: the OpenTelemetry SDK switched on by the standard OTEL_* variables exports
 * over OTLP/HTTP (JSON) to a real receiver on loopback. A browser that sends one W3C `traceparent`
 * (https://www.w3.org/TR/trace-context/) on every request of a login and an API call gets one trace:
 * the server spans, PAR, the token exchange, the IdP's HTTP calls, store operations and the
 * upstream call, with the IdP and the upstream receiving the same trace id.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { startTracing, type Tracing } from '../../src/observability/otel-sdk.js';
import {
  clientMetadata,
  freePort,
  LogSink,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { apiCall, ALICE } from '../helpers/flows.js';
import { type OtlpReceiver, startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { loginAtDevIdp, TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

describe('OpenTelemetry traces over OTLP/HTTP', () => {
  let receiver: OtlpReceiver;
  let tracing: Tracing | undefined;
  let idp: DevIdp;
  let bff: RunningBff;
  let upstream: RecordingUpstream;
  const logs = new LogSink();
  const idpTraceparents: { path: string; traceparent: string | undefined }[] = [];

  before(async () => {
    receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
    process.env.OTEL_SERVICE_NAME = 'fapi-bff-test';
    tracing = await startTracing(process.env, 'test');
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({
      clients: [clientMetadata('bff-trace', `http://127.0.0.1:${port}`, key)],
      onRequest: (r) => idpTraceparents.push({ path: r.url.split('?')[0] ?? '', traceparent: r.traceparent }),
    });
    upstream = await startRecordingUpstream();
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'bff-trace',
      key,
      storeKind: 'memory',
      routes: { echo: upstream.url },
      env: { MS_BFF_ACCESS_LOG: 'true' },
      logs,
      logLevel: 'debug',
    });
  });
  after(async () => {
    await bff?.close();
    await upstream?.close();
    await idp?.close();
    await tracing?.shutdown();
    await receiver?.close();
  });

  it('is switched on by OTEL_EXPORTER_OTLP_ENDPOINT and exports JSON when asked', () => {
    assert.ok(tracing, 'tracing started');
    assert.equal(tracing.exporter, 'otlp http/json');
  });

  it('puts a full login and an API call into the browser’s trace, down to the IdP and the upstream', async () => {
    const traceId = randomBytes(16).toString('hex');
    const browserSpan = randomBytes(8).toString('hex');
    const traceparent = `00-${traceId}-${browserSpan}-01`;
    const browser = new TestBrowser();
    const idpOrigin = new URL(idp.issuer).origin;

    const start = await browser.navigate(`${bff.url}/auth/login?returnTo=/x`, {
      headers: { traceparent },
      stopWhen: (u) => u.origin === idpOrigin,
    });
    assert.ok(start.stopped, 'redirected to the IdP');
    const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
      u.href.startsWith(`${bff.url}/auth/callback`),
    );
    const callback = await browser.request(done.url, { headers: { traceparent } });
    assert.equal(callback.status, 302);
    const api = await apiCall(browser, bff.url, '/api/echo/hello', { headers: { traceparent } });
    assert.equal(api.status, 200);
    await tracing?.flush();

    const spans = receiver.spans.filter((s) => s.traceId === traceId);
    const names = spans.map((s) => s.name);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const one = (name: string) => {
      const found = spans.filter((s) => s.name === name);
      assert.equal(found.length, 1, `one ${name} span in the trace (have: ${names.join(', ')})`);
      return found[0]!;
    };
    const login = one('GET /auth/login');
    const cb = one('GET /auth/callback');
    const apiSpan = one('GET /api/:route/*');
    for (const server of [login, cb, apiSpan]) {
      assert.equal(server.parentSpanId, browserSpan, `${server.name} continues the incoming traceparent`);
      assert.equal(server.kind, 2, 'SERVER');
    }
    const par = one('idp.par');
    const token = one('idp.token');
    const proxy = one('proxy echo');
    assert.equal(par.parentSpanId, login.spanId, 'PAR under the login request');
    assert.equal(token.parentSpanId, cb.spanId, 'token exchange under the callback');
    assert.equal(proxy.parentSpanId, apiSpan.spanId, 'upstream call under the API request');
    assert.equal(proxy.kind, 3, 'CLIENT');
    assert.equal(proxy.attributes['http.response.status_code'], 200);

    // The IdP HTTP calls are client spans under PAR and token; the IdP received their context.
    const parHttp = spans.filter((s) => s.name === 'idp.http' && s.parentSpanId === par.spanId);
    const tokenHttp = spans.filter((s) => s.name === 'idp.http' && s.parentSpanId === token.spanId);
    assert.equal(parHttp.length, 1, JSON.stringify(parHttp));
    // The token call, and (non-repudiation checks) the JWKS fetch that verifies the ID token.
    assert.ok(
      tokenHttp.some((s) => String(s.attributes['url.full']).endsWith('/token')),
      JSON.stringify(tokenHttp),
    );
    const atIdp = idpTraceparents.filter((r) => r.traceparent?.split('-')[1] === traceId);
    assert.ok(
      atIdp.some((r) => r.path.endsWith('/request') && r.traceparent?.split('-')[2] === parHttp[0]!.spanId),
      `the IdP received PAR with our trace id (got ${JSON.stringify(idpTraceparents)})`,
    );
    assert.ok(
      atIdp.some((r) => r.path.endsWith('/token')),
      'the IdP received the token request in the trace',
    );

    // Store operations of the login are spans of the same trace.
    assert.ok(
      spans.some((s) => s.name === 'store.set' && byId.get(s.parentSpanId)?.name === 'GET /auth/login'),
      'login transaction stored under the login span',
    );
    assert.ok(
      spans.some((s) => s.name === 'store.take'),
      'transaction taken at the callback',
    );

    // The upstream got the same trace id, with the proxy span as parent.
    const received = upstream.requests.at(-1)?.headers.traceparent;
    assert.equal(typeof received, 'string');
    const [, upTrace, upParent] = String(received).split('-');
    assert.equal(upTrace, traceId, 'the upstream continues the same trace');
    assert.equal(upParent, proxy.spanId, 'its parent is the proxy span');
  });

  it('puts request_id and trace_id on every log line of a request, also the IdP-call lines', async () => {
    const traceId = randomBytes(16).toString('hex');
    const requestId = `lb-${randomBytes(6).toString('hex')}`;
    const browser = new TestBrowser();
    const idpOrigin = new URL(idp.issuer).origin;
    const before = logs.lines.length;
    const start = await browser.navigate(`${bff.url}/auth/login`, {
      headers: {
        traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
        'x-request-id': requestId,
      },
      stopWhen: (u) => u.origin === idpOrigin,
    });
    assert.equal(start.response.headers.get('x-request-id'), requestId, 'a well-formed X-Request-Id is kept');
    // The access line is written when the response has finished, possibly after the client read it.
    for (let i = 0; i < 100 && !logs.lines.slice(before).some((l) => l.includes('"access":true')); i++)
      await new Promise((r) => setTimeout(r, 20));
    const lines = logs.records().slice(before);
    const mine = lines.filter((l) => l.request_id === requestId);
    assert.ok(
      mine.some((l) => l.idp_endpoint === 'par'),
      'the PAR call is logged with the request id',
    );
    assert.ok(
      mine.some((l) => l.access === true),
      'the access log line too',
    );
    for (const line of mine) assert.equal(line.trace_id, traceId, `trace id on ${JSON.stringify(line)}`);
    for (const line of lines)
      assert.ok(line.request_id, `no line without a request id: ${JSON.stringify(line)}`);

    const forged = await browser.request(`${bff.url}/healthz`, {
      headers: { 'x-request-id': 'bad id "><script>' },
    });
    const id = forged.headers.get('x-request-id') ?? '';
    assert.match(id, /^[0-9a-f-]{36}$/, 'a malformed X-Request-Id is replaced');

    // An API call (its routes bind no emitters, so nothing but the request's own logger carries the
    // request's fields into its access line; the answer here is a 401 problem, no session).
    const apiId = `${requestId}-api`;
    const api = await browser.request(`${bff.url}/api/echo/items`, {
      headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`, 'x-request-id': apiId },
    });
    assert.equal(api.headers.get('x-request-id'), apiId);
    const accessOf = () => logs.records().find((l) => l.request_id === apiId && l.access === true);
    for (let i = 0; i < 100 && !accessOf(); i++) await new Promise((r) => setTimeout(r, 20));
    const access = accessOf();
    assert.ok(access, 'the API call has an access line');
    assert.equal(access.trace_id, traceId, `trace id on ${JSON.stringify(access)}`);
    assert.match(String(access.span_id), /^[0-9a-f]{16}$/, `span id on ${JSON.stringify(access)}`);
  });
});
