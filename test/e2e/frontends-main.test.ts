/**
 * Reloading frontends in the real entry point (`node dist/src/main.js`): SIGHUP re-reads the
 * configuration, and a rewritten MS_BFF_CONFIG file is applied within 5 s; a broken file is refused
 * and the running configuration keeps serving. The IdP is oidc-provider in this process.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { freePort, frontendsEnv } from '../helpers/bff-harness.js';
import { type MainProcess, startMain } from '../helpers/main-process.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

describe('frontends reload in the running entry point', { timeout: 90_000 }, () => {
  let idp: DevIdp;
  let upstream: RecordingUpstream;
  let main: MainProcess;
  let dir: string;
  let file: string;
  let port: number;
  let url: string;

  const frontends = (routes: Record<string, unknown>, cookieName = '__Host-app') =>
    JSON.stringify({
      frontends: [
        { name: 'app', host: '127.0.0.1', publicUrl: url, clientId: 'app-bff', cookieName, routes },
      ],
    });

  /** The API route's answer: 404 until a reload adds it. */
  async function status(path: string): Promise<number> {
    const res = await fetch(`${url}${path}`, { headers: { 'x-csrf': '1', 'sec-fetch-site': 'same-origin' } });
    await res.body?.cancel();
    return res.status;
  }

  /** Lines of the BFF's log with this message, parsed. */
  function logLines(msg: string): Record<string, unknown>[] {
    return main
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r.msg === msg);
  }

  async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      assert.ok(Date.now() < deadline, `${what} within ${ms} ms\n${main.stdout().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  before(async () => {
    idp = await startDevIdp({ clients: [] });
    upstream = await startRecordingUpstream();
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    dir = mkdtempSync(join(tmpdir(), 'bff-frontends-main-'));
    file = join(dir, 'bff.json');
    writeFileSync(file, frontends({ one: upstream.url }));
    main = startMain({
      ...(await frontendsEnv({ issuer: idp.issuer, port, file })),
      LOG_LEVEL: 'info',
    });
    await main.waitFor('fapi-bff listening');
  });

  after(async () => {
    await main?.stop();
    await upstream?.close();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('SIGHUP re-reads the configuration (nothing changed: nothing swapped)', async () => {
    main.child.kill('SIGHUP');
    await until(
      () =>
        logLines('configuration reloaded').some((l) => l.trigger === 'sighup' && l.outcome === 'unchanged'),
      'a SIGHUP reload is logged',
    );
    assert.equal(await status('/api/one/x'), 401, 'the route serves (no session: 401)');
  });

  it('applies a rewritten file within 5 s: a new route, an old one removed', async () => {
    assert.equal(await status('/api/two/x'), 404);
    writeFileSync(file, frontends({ two: upstream.url }));
    await until(async () => (await status('/api/two/x')) === 401, 'the new route serves');
    assert.equal(await status('/api/one/x'), 404, 'the removed route is gone');
    // The log line travels through the child's stdout pipe: it may arrive just after the route serves.
    await until(
      () => logLines('configuration reloaded').some((l) => l.outcome === 'applied'),
      'the applied reload is logged',
    );
    const applied = logLines('configuration reloaded').find((l) => l.outcome === 'applied');
    assert.equal(applied?.frontends_changed && String(applied.frontends_changed), 'app');
  });

  it('refuses a broken file (every problem logged) and SIGHUP does not apply it either', async () => {
    writeFileSync(file, frontends({ three: { url: upstream.url, token: 'magic' } }, 'bad-cookie'));
    const refusal = 'configuration reload refused; the previous configuration stays';
    await until(() => logLines(refusal).length > 0, 'the refusal is logged');
    main.child.kill('SIGHUP');
    await until(
      () => logLines(refusal).some((l) => l.trigger === 'sighup'),
      'the SIGHUP reload is refused too',
    );
    const problems = (logLines(refusal).at(-1)?.problems ?? []) as string[];
    assert.ok(
      problems.some((p) => p.startsWith('MS_BFF_CONFIG.frontends[0].cookieName')),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.startsWith('MS_BFF_CONFIG.frontends[0].routes.three')),
      problems.join('\n'),
    );
    assert.equal(await status('/api/two/x'), 401, 'the previous configuration serves');
    assert.equal(await status('/api/three/x'), 404);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /bff_config_reloads_total\{outcome="invalid"\} [1-9]/);
    assert.match(metrics, /bff_config_reloads_total\{outcome="applied"\} 1/);
  });
});
