/**
 * Abuse limits: a flood of unauthenticated GET /auth/login from one client address is held to the
 * per-client limit and the global PAR budget (the IdP sees at most the budget), answered 429
 * (an HTML page for this navigation endpoint) with Retry-After, while /healthz stays fast.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';

const FLOOD = 2000;
/**
 * In flight at once. The flood's client, the BFF and the IdP share this process's event loop (and
 * the machine with other tests): more in flight only lengthens the queue /healthz waits in.
 */
const CONCURRENCY = 4;
/** The flood stops here even if unfinished (the test then fails on the count). */
const DEADLINE_MS = 60_000;

/** Fire `total` requests with at most `concurrency` in flight; resolves with every status. */
async function flood(pool: Pool, path: string, total: number, concurrency: number): Promise<number[]> {
  const statuses: number[] = [];
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < total && performance.now() - started < DEADLINE_MS) {
      next++;
      const res = await pool.request({ method: 'GET', path, headers: { 'sec-fetch-site': 'none' } });
      await res.body.dump();
      statuses.push(res.statusCode);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}

function count(statuses: number[], status: number): number {
  return statuses.filter((s) => s === status).length;
}

describe('abuse limits', () => {
  let idp: DevIdp;
  const parAt: { port: number }[] = [];
  let parRequests = 0;
  let bff: RunningBff;
  let clientKey: Awaited<ReturnType<typeof makeClientKey>>;
  let port: number;

  before(async () => {
    port = await freePort();
    clientKey = await makeClientKey('ES256');
    idp = await startDevIdp({
      clients: [clientMetadata('bff-flood', `http://127.0.0.1:${port}`, clientKey)],
      onRequest: (r) => {
        if (r.method === 'POST' && r.url.split('?')[0]?.endsWith('/request')) parRequests++;
      },
    });
    void parAt;
  });
  after(async () => {
    await bff?.close();
    await idp?.close();
  });

  it('holds a 2,000-login flood to the PAR budget at the IdP, with 429 + Retry-After, and /healthz stays fast', async (t) => {
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'bff-flood',
      key: clientKey,
      env: { MS_BFF_LOGIN_RATE_LIMIT: '1000000', MS_BFF_PAR_BUDGET: '50' },
    });
    const pool = new Pool(bff.url, { connections: CONCURRENCY });
    const health = new Pool(bff.url, { connections: 1 });
    const sample = async () => {
      const started = performance.now();
      const res = await health.request({ method: 'GET', path: '/healthz' });
      await res.body.dump();
      assert.equal(res.statusCode, 200);
      return performance.now() - started;
    };
    // Baseline on this machine, same connection, before the flood.
    const baseline: number[] = [];
    for (let i = 0; i < 20; i++) baseline.push(await sample());

    parRequests = 0;
    const during: number[] = [];
    let flooding = true;
    const sampler = (async () => {
      while (flooding) {
        during.push(await sample());
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const statuses = await flood(pool, '/auth/login?returnTo=/', FLOOD, CONCURRENCY);
    flooding = false;
    await sampler;

    assert.equal(statuses.length, FLOOD);
    assert.equal(count(statuses, 302), 50, 'exactly the budget got through to a login');
    assert.equal(count(statuses, 429), FLOOD - 50, 'everything else was refused');
    assert.ok(parRequests <= 50, `the IdP saw ${parRequests} PAR requests (budget 50)`);
    assert.equal(parRequests, 50);

    const refused = await pool.request({
      method: 'GET',
      path: '/auth/login',
      headers: { 'sec-fetch-site': 'none' },
    });
    assert.equal(refused.statusCode, 429);
    assert.match(String(refused.headers['retry-after']), /^[1-9][0-9]*$/);
    const body = await refused.body.text();
    assert.match(String(refused.headers['content-type']), /text\/html|application\/problem\+json/);
    assert.match(body, /BFF_RATE_LIMITED/);
    const metrics = await bff.metrics.render();
    assert.match(metrics, new RegExp(`bff_rate_limited_total\\{limit="par_budget"\\} ${FLOOD - 50 + 1}`));

    const max = Math.max(...during);
    const sorted = [...during].sort((a, b) => a - b);
    t.diagnostic(
      `/healthz during the flood: ${during.length} samples, median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)} ms, max ${max.toFixed(1)} ms; idle baseline max ${Math.max(...baseline).toFixed(1)} ms`,
    );
    assert.ok(during.length >= 5, 'sampled throughout the flood');
    assert.ok(max < 100, `/healthz answered within 100 ms throughout (max ${max.toFixed(1)} ms)`);
    await pool.close();
    await health.close();
  });
});
