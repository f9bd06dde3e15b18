/**
 * Graceful shutdown and fatal unhandled rejections, on the real entry point (`node dist/src/main.js`)
 * against an in-process oidc-provider.
 *
 * SIGTERM with 16 slow requests in flight: every one completes with the upstream's answer and the
 * process exits 0 (it used to exit 1 from its force timer even when every request had completed).
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { bffEnv, clientMetadata, freePort, makeClientKey } from '../helpers/bff-harness.js';
import { startMain } from '../helpers/main-process.js';

const IN_FLIGHT = 16;
const UPSTREAM_DELAY_MS = 1_500;

describe('SIGTERM with requests in flight', { timeout: 120_000 }, () => {
  let idp: DevIdp;
  let upstream: Server;
  let upstreamUrl: string;
  let received = 0;
  const key = makeClientKey('ES256');
  let port: number;

  before(async () => {
    port = await freePort();
    idp = await startDevIdp({ clients: [clientMetadata('shutdown', `http://127.0.0.1:${port}`, await key)] });
    upstream = createServer((req, res) => {
      received++;
      req.resume();
      setTimeout(() => res.end(JSON.stringify({ slow: true })), UPSTREAM_DELAY_MS);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  after(async () => {
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
    await idp?.close();
  });

  it('lets all 16 finish and exits 0', async () => {
    const env = bffEnv({
      port,
      issuer: idp.issuer,
      clientId: 'shutdown',
      key: await key,
      routes: { slow: { url: upstreamUrl, token: 'none' } },
      env: { LOG_LEVEL: 'info' },
    });
    const main = startMain(env);
    try {
      await main.waitFor('fapi-bff listening');
      const base = `http://127.0.0.1:${port}`;
      const calls = Array.from({ length: IN_FLIGHT }, (_, i) =>
        fetch(`${base}/api/slow/item/${i}`, {
          headers: { 'x-csrf': '1' },
          signal: AbortSignal.timeout(60_000),
        }).then(async (r) => ({ status: r.status, body: await r.text() })),
      );
      // Bounded wait until the upstream holds all of them, then SIGTERM.
      for (let i = 0; i < 400 && received < IN_FLIGHT; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(received, IN_FLIGHT, 'all requests reached the upstream before SIGTERM');
      main.child.kill('SIGTERM');
      const results = await Promise.all(calls);
      for (const r of results) assert.deepEqual(r, { status: 200, body: '{"slow":true}' });
      const code = await main.exited(60_000);
      assert.equal(code, 0, `exit status\n${main.stdout()}\n${main.stderr()}`);
      assert.match(main.stdout(), /shutting down/);
    } finally {
      await main.stop();
    }
  });
});

describe('an unhandled promise rejection', { timeout: 60_000 }, () => {
  it('is logged, the process drains (a request in flight completes) and exits with status 1', async () => {
    // A real HTTP server with one slow request in flight, under the lifecycle main.ts installs.
    const lifecycle = new URL('../../src/server/lifecycle.js', import.meta.url).href;
    const script = `
      import { createServer } from 'node:http';
      import { installLifecycle } from ${JSON.stringify(lifecycle)};
      const server = createServer((req, res) => {
        setTimeout(() => res.end('done'), 500);
        // A bug: a promise that fails where nothing awaits it, while this request is in flight.
        Promise.reject(new Error('stray failure'));
      });
      server.listen(0, '127.0.0.1', () => {
        const log = {
          info: (o, m) => console.log(JSON.stringify({ ...o, msg: m })),
          error: (o, m) => console.log(JSON.stringify({ err: String(o.err), msg: m })),
        };
        installLifecycle({
          log,
          closeables: [{ close: () => new Promise((r) => server.close(() => { console.log('server closed'); r(); })) }],
          drainTimeoutMs: 20000,
        });
        console.log('port ' + server.address().port);
      });
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      for (let i = 0; i < 400 && !/port \d+/.test(out); i++) await new Promise((r) => setTimeout(r, 25));
      const port = /port (\d+)/.exec(out)?.[1];
      assert.ok(port, out);
      const inFlight = fetch(`http://127.0.0.1:${port}/`, {
        headers: { connection: 'close' },
        signal: AbortSignal.timeout(20_000),
      });
      const response = await inFlight;
      assert.equal(await response.text(), 'done');
      assert.equal(await exited, 1, out);
      assert.match(out, /unhandled promise rejection/);
      assert.match(out, /server closed/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
