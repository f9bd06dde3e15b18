/**
 * Attack: spoofing the client's address, host or scheme to upstreams with forwarding headers
 * (security review, finding 4).
 *
 * Client-sent `X-Forwarded-For`, `X-Forwarded-Host`, `X-Forwarded-Proto`, `Forwarded` and
 * `X-Real-IP` reached upstreams unchanged, so an upstream that logs, rate-limits, allowlists or
 * builds links from them acted on whatever the client claimed.
 *
 * Fixed when: the upstream receives only forwarding headers the BFF set itself: the client address
 * the BFF determined (the socket peer, or what a proxy in MS_BFF_TRUSTED_PROXIES says), and the
 * host and scheme of MS_BFF_PUBLIC_URL.
 */
import { strict as assert } from 'node:assert';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { DevIdp } from '../../src/dev/idp.js';
import type { RunningBff } from '../helpers/bff-harness.js';
import { apiCall } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';
import { type Stack, startStack } from '../helpers/stack.js';
import type { RecordingUpstream } from '../helpers/upstream.js';

const SPOOFED = {
  'x-forwarded-for': '10.0.0.1, 192.0.2.66',
  'x-forwarded-host': 'admin.internal.example',
  'x-forwarded-proto': 'https',
  'x-forwarded-port': '443',
  'x-forwarded-prefix': '/admin',
  forwarded: 'for=10.0.0.1;host=admin.internal.example;proto=https',
  'x-real-ip': '10.0.0.1',
  'true-client-ip': '10.0.0.1',
  'x-original-url': '/admin/delete',
};

describe('regression: forwarded-header spoofing', () => {
  let idp: DevIdp;
  let direct: RunningBff;
  let behindProxy: RunningBff;
  let upstream: RecordingUpstream;
  let stack: Stack;

  before(async () => {
    const routes = (url: string) => ({ public: { url, token: 'none' } });
    stack = await startStack({
      clientId: 'bff-fwd-1',
      routes,
      others: {
        behindProxy: {
          clientId: 'bff-fwd-2',
          routes,
          env: { MS_BFF_TRUSTED_PROXIES: '127.0.0.1/32, ::1' },
        },
      },
    });
    ({ idp, bff: direct, upstream } = stack);
    behindProxy = stack.others.behindProxy!;
  });
  after(async () => {
    await stack?.close();
  });
  beforeEach(() => {
    upstream.requests.length = 0;
  });

  it('an untrusted client cannot state its address, host or scheme to the upstream', async () => {
    const res = await apiCall(new TestBrowser(), direct.url, '/api/public/x', { headers: SPOOFED });
    assert.equal(res.status, 200);
    const seen = upstream.requests[0]?.headers ?? {};
    const host = new URL(direct.url).host;
    assert.equal(seen['x-forwarded-for'], '127.0.0.1', 'the socket peer, not the claim');
    assert.equal(seen['x-forwarded-host'], host, 'our public host');
    assert.equal(seen['x-forwarded-proto'], 'http', 'our public scheme');
    assert.equal(seen.forwarded, `for=127.0.0.1;host="${host}";proto=http`);
    for (const name of [
      'x-forwarded-port',
      'x-forwarded-prefix',
      'x-real-ip',
      'true-client-ip',
      'x-original-url',
    ])
      assert.equal(seen[name], undefined, `${name} is not forwarded`);
  });

  it('behind a trusted proxy, the address it reports is used; host and scheme stay ours', async () => {
    const res = await apiCall(new TestBrowser(), behindProxy.url, '/api/public/x', {
      headers: { ...SPOOFED, 'x-forwarded-for': '198.51.100.9' },
    });
    assert.equal(res.status, 200);
    const seen = upstream.requests[0]?.headers ?? {};
    assert.equal(seen['x-forwarded-for'], '198.51.100.9', 'the client address the trusted proxy saw');
    assert.equal(seen['x-forwarded-host'], new URL(behindProxy.url).host);
    assert.equal(seen['x-real-ip'], undefined);
  });

  it('refuses a malformed MS_BFF_TRUSTED_PROXIES at startup', async () => {
    const { loadConfig } = await import('../../src/config/load.js');
    const { bffEnv } = await import('../helpers/bff-harness.js');
    const env = bffEnv({
      port: 1,
      issuer: idp.issuer,
      clientId: 'x',
      env: { MS_BFF_TRUSTED_PROXIES: '10.0.0.0/33, lb.example' },
    });
    await assert.rejects(loadConfig(env), /MS_BFF_TRUSTED_PROXIES/);
  });
});
