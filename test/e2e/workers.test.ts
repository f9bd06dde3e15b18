/**
 * MS_BFF_WORKERS: the real entry point with two worker processes sharing one port and a private
 * Redis. A session works whichever worker answers; /metrics is the sum of every worker; SIGHUP
 * restarts workers one at a time without a failed request or a lost session; a worker that dies is
 * replaced; SIGTERM stops everything in bounded time.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { bffEnv, clientMetadata, freePort, makeClientKey } from '../helpers/bff-harness.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { type MainProcess, startMain } from '../helpers/main-process.js';
import { haveRedisServer, type Standalone, startStandalone, waitFor } from '../helpers/redis-servers.js';
import { TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

function workerPids(primary: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(primary)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function proxiedTotal(metrics: string): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    const m = /^bff_proxy_requests_total(?:\{[^}]*\})? (\d+(?:\.\d+)?)$/.exec(line);
    if (m) sum += Number(m[1]);
  }
  return sum;
}

describe('MS_BFF_WORKERS=2', { skip: haveRedisServer ? false : 'no redis-server' }, () => {
  let redis: Standalone;
  let idp: DevIdp;
  let upstream: RecordingUpstream;
  let bff: MainProcess;
  let url: string;

  before(async () => {
    redis = await startStandalone();
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({ clients: [clientMetadata('bff-workers', `http://127.0.0.1:${port}`, key)] });
    upstream = await startRecordingUpstream();
    url = `http://127.0.0.1:${port}`;
    bff = startMain({
      ...bffEnv({ port, issuer: idp.issuer, clientId: 'bff-workers', key, routes: { echo: upstream.url } }),
      REDIS_URL: redis.url,
      MS_BFF_WORKERS: '2',
      LOG_LEVEL: 'info',
    });
    await bff.waitFor(/workers listening/, 30_000);
  });

  after(async () => {
    await bff?.stop();
    await upstream?.close();
    await idp?.close();
    await redis?.close();
  });

  it('serves one session from both workers and sums /metrics across them', async () => {
    const pid = bff.child.pid as number;
    assert.equal(workerPids(pid).length, 2, 'two workers');
    const browser = new TestBrowser();
    assert.equal((await fullLogin(browser, url, idp)).status, 302);
    const calls = 40;
    for (let i = 0; i < calls; i++) assert.equal((await apiCall(browser, url, `/api/echo/${i}`)).status, 200);
    // Any worker may answer the scrape; each saw only part of the calls, the aggregate all of them.
    for (let scrape = 0; scrape < 3; scrape++) {
      const res = await browser.request(`${url}/metrics`);
      const text = await res.text();
      assert.equal(
        res.status,
        200,
        `${text.slice(0, 300)} ${bff
          .stdout()
          .split('\n')
          .filter((l) => l.includes('"level":50'))
          .slice(-1)
          .join('')
          .slice(0, 1500)}`,
      );
      assert.equal(proxiedTotal(text), calls, 'the proxied calls of every worker are summed');
    }
  });

  it('SIGHUP restarts the workers one at a time: no failed request, the session survives', async () => {
    const pid = bff.child.pid as number;
    const before = workerPids(pid);
    const browser = new TestBrowser();
    assert.equal((await fullLogin(browser, url, idp)).status, 302);
    let stop = false;
    const statuses: number[] = [];
    let resets = 0;
    const load = (async () => {
      for (let i = 0; i < 3000 && !stop; i++) {
        // A draining worker closes its idle keep-alive connections; a GET racing that close on a
        // reused connection is reset, and clients retry it once on a new connection (as browsers do).
        const res = await apiCall(browser, url, `/api/echo/rolling/${i}`).catch(() => {
          resets++;
          return apiCall(browser, url, `/api/echo/rolling/${i}`);
        });
        statuses.push(res.status);
        await sleep(10);
      }
    })();
    process.kill(pid, 'SIGHUP');
    await bff.waitFor(/rolling restart done/, 60_000);
    stop = true;
    await load;
    const after = workerPids(pid);
    assert.equal(after.length, 2);
    assert.equal(after.filter((p) => before.includes(p)).length, 0, 'every worker was replaced');
    assert.ok(statuses.length > 10, `load ran (${statuses.length} calls)`);
    assert.deepEqual([...new Set(statuses)], [200], 'no request failed during the rolling restart');
    process.stdout.write(
      `# rolling restart: ${statuses.length} calls, all 200; ${resets} idle keep-alive resets retried\n`,
    );
  });

  it('replaces a worker that dies, and SIGTERM stops everything', async () => {
    const pid = bff.child.pid as number;
    const [victim] = workerPids(pid);
    process.kill(victim as number, 'SIGKILL');
    await waitFor(async () => {
      const now = workerPids(pid);
      if (now.length !== 2 || now.includes(victim as number)) throw new Error('not replaced yet');
    }, 20_000);
    const browser = new TestBrowser();
    assert.equal((await fullLogin(browser, url, idp)).status, 302);
    assert.equal((await apiCall(browser, url, '/api/echo/after-crash')).status, 200);
    process.kill(pid, 'SIGTERM');
    assert.equal(await bff.exited(20_000), 0, 'the primary exits 0 after its workers drained');
  });
});
