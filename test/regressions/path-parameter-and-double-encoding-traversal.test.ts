/**
 * Attack: escaping a route's upstream base path with path parameters, double encoding, an encoded
 * route name or an absolute-form request target (security review, finding 2).
 *
 * `/api/<route>/..;/admin` was forwarded as `<base>/..;/admin`, which Tomcat/Spring-style servers
 * resolve as a parent segment; `%252e%252e` went through as is, a parent segment to any upstream
 * that decodes twice; and the forwarded path was cut from the request target by the length of the
 * decoded route name, so `/api/%62ased/x` or `GET http://evil.example/api/based/x` shifted it.
 *
 * Fixed when: an upstream recording the raw request line sees either nothing (the BFF refused with
 * 400) or exactly `<base>/<rest>` built from the raw segments of the request target.
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
import { type RawUpstream, rawRequest, startRawUpstream } from '../helpers/raw-http.js';

const CSRF = { 'x-csrf': '1', 'sec-fetch-site': 'same-origin' };

/** Targets the BFF must refuse: each would leave /v1/base/ on some upstream. */
const REFUSED = [
  '/api/based/..;/admin',
  '/api/based/..;jsessionid=x/admin',
  '/api/based/.;x/admin',
  '/api/based/a/..;/..;/admin',
  '/api/based/%2e%2e;/admin',
  '/api/based/%252e%252e/admin',
  '/api/based/%252E%252E/admin',
  '/api/based/.%252e/admin',
  '/api/based/%25252e%25252e/admin',
  '/api/based/a%252fb',
  '/api/based/a%255cb',
  '/api/based/%2e%2e/admin',
  'http://evil.example/api/based/..;/admin',
];

/** Targets that are forwarded, and the exact line the upstream must see. */
const FORWARDED: readonly (readonly [string, string])[] = [
  ['/api/based/x', '/v1/base/x'],
  ['/api/%62ased/x', '/v1/base/x'],
  ['/api/%62%61%73%65%64/x/y?q=1', '/v1/base/x/y?q=1'],
  ['http://evil.example/api/based/x', '/v1/base/x'],
  ['http://evil.example/api/%62ased/x?q=%2F', '/v1/base/x?q=%2F'],
  ['/api/based/x;jsessionid=1', '/v1/base/x;jsessionid=1'],
  ['/api/based/100%25', '/v1/base/100%25'],
];

describe('regression: path parameters, double encoding and shifted paths to upstreams', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let upstream: RawUpstream;

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({ clients: [clientMetadata('bff-path', `http://127.0.0.1:${port}`, key)] });
    upstream = await startRawUpstream();
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'bff-path',
      key,
      routes: { based: { url: `${upstream.url}/v1/base/`, token: 'none' } },
    });
  });
  after(async () => {
    await bff?.close();
    await upstream?.close();
    await idp?.close();
  });

  for (const target of REFUSED) {
    it(`refuses ${target} and forwards nothing`, async () => {
      const before = upstream.lines.length;
      const res = await rawRequest(bff.url, target, CSRF);
      assert.equal(res.status, 400, res.head);
      assert.deepEqual(upstream.lines.slice(before), [], 'nothing reached the upstream');
    });
  }

  for (const [target, expected] of FORWARDED) {
    it(`forwards ${target} as ${expected}`, async () => {
      const before = upstream.lines.length;
      const res = await rawRequest(bff.url, target, CSRF);
      assert.equal(res.status, 200, res.head);
      assert.deepEqual(upstream.lines.slice(before), [`GET ${expected} HTTP/1.1`]);
    });
  }
});
