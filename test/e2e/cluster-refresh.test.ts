/**
 * Two BFF processes (the real entry point) behind one origin, sharing one Redis. Just after the
 * access token expired, 50 parallel API calls are split across both, against oidc-provider, which
 * rotates refresh tokens and revokes the whole grant when a rotated one is reused. Every call must
 * succeed and the IdP must see exactly one refresh_token grant; 20 runs in a row.
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { createRedisStore } from '../../src/store/redis-store.js';
import { clientMetadata, freePort, makeClientKey, REDIS_URL } from '../helpers/bff-harness.js';
import { ALICE } from '../helpers/flows.js';
import { loginAtDevIdp, TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

const RUNS = Number(process.env.CLUSTER_REFRESH_RUNS ?? 20);
const CALLS = 50;
const TOKEN_TTL_SEC = 2;

async function startProcess(
  env: Record<string, string>,
  url: string,
): Promise<{ child: ChildProcess; output: () => string }> {
  let output = '';
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d) => {
    output = (output + d).slice(-5000);
  });
  child.stderr?.on('data', (d) => {
    output = (output + d).slice(-5000);
  });
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { child, output: () => output };
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`BFF process did not start: ${output}`);
}

describe('cluster-safe refresh across two BFF processes on one Redis', { timeout: 240_000 }, () => {
  let idp: DevIdp;
  let upstream: RecordingUpstream;
  const procs: ChildProcess[] = [];
  let publicUrl: string;
  let urlB: string;
  let prefix: string;
  const refreshGrants: number[] = [];

  before(async () => {
    const portA = await freePort();
    const portB = await freePort();
    publicUrl = `http://127.0.0.1:${portA}`;
    urlB = `http://127.0.0.1:${portB}`;
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({
      clients: [clientMetadata('bff-cluster', publicUrl, key)],
      accessTokenTtlSec: TOKEN_TTL_SEC,
    });
    idp.provider.on('grant.success', (ctx: { oidc: { params?: { grant_type?: unknown } } }) => {
      if (ctx.oidc.params?.grant_type === 'refresh_token') refreshGrants.push(Date.now());
    });
    upstream = await startRecordingUpstream();
    prefix = `bff-cluster:${randomBytes(4).toString('hex')}:`;
    const env = {
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: 'bff-cluster',
      BFF_JWT_SIGNING_KEY: JSON.stringify(key.privateJwk),
      MS_BFF_PROFILE: 'development',
      // Both instances serve one origin, as behind a load balancer.
      MS_BFF_PUBLIC_URL: publicUrl,
      HOST: '127.0.0.1',
      MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
      MS_BFF_ROUTES: JSON.stringify({ echo: upstream.url }),
      MS_BFF_REFRESH_SKEW: '0',
      REDIS_URL,
      MS_BFF_REDIS_KEY_PREFIX: prefix,
      LOG_LEVEL: 'warn',
    };
    procs.push((await startProcess({ ...env, PORT: String(portA) }, publicUrl)).child);
    procs.push((await startProcess({ ...env, PORT: String(portB) }, urlB)).child);
  });
  after(async () => {
    for (const p of procs) p.kill('SIGTERM');
    await upstream?.close();
    await idp?.close();
    const store = await createRedisStore({ url: REDIS_URL, keyPrefix: prefix });
    await store.close();
  });

  it(`every call succeeds and the IdP sees exactly one refresh, ${RUNS} runs in a row`, async () => {
    for (let run = 1; run <= RUNS; run++) {
      const browser = new TestBrowser();
      const start = await browser.navigate(`${publicUrl}/auth/login?returnTo=/`, {
        stopWhen: (u) => u.origin === new URL(idp.issuer).origin,
      });
      const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
        u.href.startsWith(`${publicUrl}/auth/callback`),
      );
      assert.equal((await browser.request(done.url)).status, 302, `run ${run}: login`);
      const cookie = `__Host-bff-session=${browser.cookie(publicUrl, '__Host-bff-session')?.value}`;
      const loggedInAt = Date.now();

      // Just after expiry: both instances see a stale token at once.
      await sleep(Math.max(0, loggedInAt + TOKEN_TTL_SEC * 1000 + 150 - Date.now()));
      const before = refreshGrants.length;
      const calls = Array.from({ length: CALLS }, (_, i) =>
        fetch(`${i % 2 === 0 ? publicUrl : urlB}/api/echo/run-${run}-${i}`, {
          headers: { cookie, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' },
        }).then(async (r) => ({ status: r.status, body: await r.text() })),
      );
      const results = await Promise.all(calls);
      const failed = results.filter((r) => r.status !== 200);
      assert.equal(
        failed.length,
        0,
        `run ${run}: ${failed.length} failed, e.g. ${failed[0]?.status} ${failed[0]?.body}`,
      );
      assert.equal(refreshGrants.length - before, 1, `run ${run}: exactly one refresh_token grant`);
    }
  });
});
