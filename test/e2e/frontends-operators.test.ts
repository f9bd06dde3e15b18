/**
 * The operator's tools with several frontends in the MS_BFF_CONFIG file (issue 10), against a real
 * oidc-provider with open dynamic registration and without JWE (so JAR encryption is missing there):
 *  - `fapi-bff check` checks every frontend, names each, and fails when any one misses something;
 *  - `fapi-bff register --frontend NAME` registers that frontend's client into its
 *    `clientRegistrationFile`, which the loader then reads (update, show, delete too); without a name
 *    it refuses;
 *  - the embeddable `fapiBff` plugin serves one frontend per registration (`frontend: NAME`), and
 *    refuses a configuration with several and no name.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { loadConfig } from '../../src/config/load.js';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { fapiBff, IdpClient, MemoryStore, Metrics } from '../../src/index.js';
import { IssuerShares } from '../../src/oauth/issuer-share.js';
import { freePort, frontendsEnv } from '../helpers/bff-harness.js';
import { type CheckReport, runToExit, startMain } from '../helpers/main-process.js';

interface MultiCheckReport extends CheckReport {
  frontends: { name: string; client_id: string; redirect_uri: string; ok: boolean }[];
  rows: (CheckReport['rows'][number] & { frontend: string })[];
}

describe('operating several frontends: check, register, the plugin', { timeout: 120_000 }, () => {
  let idp: DevIdp;
  let dir: string;
  let port: number;
  let env: Record<string, string>;
  let file: string;

  /** Paths of the requests the IdP received, in order. */
  const seen: string[] = [];
  const count = (path: string) => seen.filter((p) => p === path).length;
  const DISCOVERY = '/.well-known/openid-configuration';
  /** While true, the IdP answers discovery with 503. */
  let discoveryDown = false;

  /** shop (plain, on /shop/) first and bank (DPoP, JAR, on /bank/) second; `bank` edits bank's entry. */
  function writeFrontends(bank: Record<string, unknown> = {}, shop: Record<string, unknown> = {}): void {
    const url = `http://127.0.0.1:${port}`;
    const frontends = [
      {
        name: 'shop',
        pathPrefix: '/shop/',
        publicUrl: url,
        clientRegistrationFile: join(dir, 'shop.json'),
        ...shop,
      },
      {
        name: 'bank',
        pathPrefix: '/bank/',
        publicUrl: url,
        clientRegistrationFile: join(dir, 'bank.json'),
        flags: { dpop: true, jar: true },
        ...bank,
      },
    ];
    writeFileSync(file, JSON.stringify({ frontends }, null, 2));
  }

  before(async () => {
    idp = await startDevIdp({
      clients: [],
      registration: {},
      middleware: [
        async (ctx, next) => {
          seen.push(ctx.path);
          if (discoveryDown && ctx.path === DISCOVERY) {
            ctx.status = 503;
            ctx.body = 'down';
            return;
          }
          await next();
        },
      ],
    });
    dir = mkdtempSync(join(tmpdir(), 'bff-frontends-ops-'));
    port = await freePort();
    file = join(dir, 'bff.json');
    env = await frontendsEnv({ issuer: idp.issuer, port, file });
    writeFrontends();
  });
  after(async () => {
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("register refuses to guess the frontend, then registers each frontend's own client", async () => {
    const none = await runToExit(['register'], env);
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /several frontends: name one with --frontend \(shop, bank\)/);
    const unknown = await runToExit(['register', '--frontend', 'nope'], env);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /no frontend named nope/);
    assert.equal(existsSync(join(dir, 'bank.json')), false);

    // No --out: the frontend's clientRegistrationFile, which does not exist yet.
    for (const name of ['shop', 'bank']) {
      const r = await runToExit(['register', '--frontend', name], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`give the frontend clientRegistrationFile: .*${name}\\.json`));
    }
    const record = (name: string) =>
      JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as Record<string, string>;
    const bank = await idp.provider.Client.find(record('bank').client_id ?? '');
    assert.deepEqual(bank?.metadata().redirect_uris, [`http://127.0.0.1:${port}/bank/auth/callback`]);
    assert.equal(bank?.metadata().dpop_bound_access_tokens, true);
    const shop = await idp.provider.Client.find(record('shop').client_id ?? '');
    assert.deepEqual(shop?.metadata().redirect_uris, [`http://127.0.0.1:${port}/shop/auth/callback`]);
    assert.notEqual(shop?.metadata().dpop_bound_access_tokens, true);

    // The loader reads each frontend's registration file: each has its registered client.
    const config = await loadConfig(env);
    assert.deepEqual(
      config.frontends.map((f) => [f.name, f.config.oidc.clientId]),
      [
        ['shop', record('shop').client_id],
        ['bank', record('bank').client_id],
      ],
    );

    // --update, --show and --delete find the file through the frontend, too.
    const token = record('bank').registration_access_token;
    const updated = await runToExit(['register', '--frontend', 'bank', '--update'], env);
    assert.equal(updated.code, 0, updated.stderr);
    assert.notEqual(record('bank').registration_access_token, token, 'the rotated token is stored');
    const shown = await runToExit(['register', '--frontend', 'bank', '--show'], env);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal((JSON.parse(shown.stdout) as Record<string, unknown>).client_id, record('bank').client_id);
    const ambiguous = await runToExit(['register', '--show'], env);
    assert.equal(ambiguous.code, 2, ambiguous.stderr);
  });

  it('the plugin serves one frontend per registration, and refuses several without a name', async () => {
    const config = await loadConfig(env);
    const refused = Fastify({ logger: false });
    await assert.rejects(async () => {
      await refused.register(fapiBff, { prefix: '/bff', config });
      await refused.ready();
    }, /fapiBff serves one frontend per registration; several frontends \(shop, bank\)/);
    await refused.close().catch(() => undefined);

    // One store for both, recording the keys written: each frontend writes in its own namespace.
    const memory = new MemoryStore();
    const written: string[] = [];
    const store = new Proxy(memory, {
      get: (target, property) => {
        const value = Reflect.get(target, property) as unknown;
        if (property === 'set' || property === 'setIfAbsent')
          return (key: string, ...rest: unknown[]) => {
            written.push(key);
            return (value as (...a: unknown[]) => unknown).call(target, key, ...rest);
          };
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const host = Fastify({ logger: false });
    await host.register(fapiBff, { prefix: '/shop', config, frontend: 'shop', store });
    await host.register(fapiBff, { prefix: '/bank', config, frontend: 'bank', store });
    await host.listen({ host: '127.0.0.1', port });
    try {
      for (const name of ['shop', 'bank']) {
        const res = await fetch(`http://127.0.0.1:${port}/${name}/auth/login`, {
          redirect: 'manual',
          headers: { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate' },
        });
        assert.equal(res.status, 302, await res.text());
        const location = new URL(res.headers.get('location') ?? '');
        const clientId = (
          JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as Record<string, string>
        ).client_id;
        assert.equal(location.searchParams.get('client_id'), clientId, `${name} logs in with its own client`);
        assert.ok(
          written.some((k) => k.startsWith(`f:${name}:`)),
          `${name}'s login transaction is in its namespace: ${written.join(' ')}`,
        );
      }
    } finally {
      await host.close();
      await memory.close();
    }
  });

  it('frontends of one issuer discover it once and share one JWKS cache, also across a reload', async () => {
    // JARM on both: each needs the IdP's JWKS kept fresh in the background.
    writeFrontends({ flags: { jarm: true } }, { flags: { jarm: true } });
    const published = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
    const jwksPath = new URL(((await published.json()) as { jwks_uri: string }).jwks_uri).pathname;
    const discoveries = count('/.well-known/openid-configuration');
    const main = startMain({ ...env, LOG_LEVEL: 'info' });
    try {
      await main.waitFor('fapi-bff listening');
      assert.equal(
        count('/.well-known/openid-configuration'),
        discoveries + 1,
        'one discovery for two frontends',
      );
      const deadline = Date.now() + 5_000;
      while (count(jwksPath) === 0) {
        assert.ok(Date.now() < deadline, `no JWKS fetch within 5 s: ${seen.join(' ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      assert.equal(ready.status, 200, await ready.text());
      assert.equal(count(jwksPath), 1, `one JWKS fetch for two frontends: ${seen.join(' ')}`);

      // A changed frontend gets a new IdP client: the issuer's metadata is still fresh, not fetched again.
      writeFrontends({ flags: { jarm: true } }, { flags: { jarm: true }, scopes: 'openid profile' });
      await main.waitFor(/"outcome":"applied"/, 10_000);
      assert.equal(
        count('/.well-known/openid-configuration'),
        discoveries + 1,
        'no discovery for the reload',
      );
    } finally {
      await main.stop();
    }
  });

  it('one refresh per issuer: concurrent and recent refreshes of two frontends fetch once, a failure counts once', async () => {
    const config = await loadConfig(env);
    const metrics = new Metrics({ defaultMetrics: false });
    const shares = new IssuerShares(metrics);
    const silent = { warn: () => undefined, info: () => undefined };
    const before = count(DISCOVERY);
    const [a, b] = await Promise.all(
      config.frontends.map((f) => IdpClient.create(f.config, metrics, silent, undefined, shares)),
    );
    assert.ok(a && b);
    try {
      assert.equal(count(DISCOVERY), before + 1, 'one discovery for both clients');
      assert.deepEqual(await Promise.all([a.refreshMetadata(), b.refreshMetadata()]), [true, true]);
      assert.equal(count(DISCOVERY), before + 2, 'concurrent refreshes share one fetch');
      assert.equal(await b.refreshMetadata(60_000), true);
      assert.equal(count(DISCOVERY), before + 2, 'a result younger than the window is reused');
      discoveryDown = true;
      try {
        assert.deepEqual(await Promise.all([a.refreshMetadata(), b.refreshMetadata()]), [false, false]);
      } finally {
        discoveryDown = false;
      }
      assert.match(await metrics.render(), /^bff_discovery_refresh_failures_total 1$/m, 'counted once');
      assert.equal(a.configuration.serverMetadata().issuer, idp.issuer, 'the last good metadata serves on');
    } finally {
      a.stop();
      b.stop();
    }
  });

  it('check checks every frontend, names each, and fails when one misses something', async () => {
    // bank asks for JAR encryption, which this IdP does not offer; shop (first) is fine.
    writeFrontends({ jarEncAlg: 'RSA-OAEP-256' });
    const json = await runToExit(['check', '--format', 'json'], env);
    assert.equal(json.code, 1, json.stderr + json.stdout);
    const report = JSON.parse(json.stdout) as MultiCheckReport;
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.frontends.map((f) => [f.name, f.ok, f.redirect_uri]),
      [
        ['shop', true, `http://127.0.0.1:${port}/shop/auth/callback`],
        ['bank', false, `http://127.0.0.1:${port}/bank/auth/callback`],
      ],
    );
    const row = (frontend: string, requirement: string) =>
      report.rows.find((r) => r.frontend === frontend && r.requirement === requirement)?.status;
    assert.equal(row('bank', 'JAR encryption'), 'missing');
    assert.equal(row('bank', 'Sender constraint: DPoP'), 'enabled');
    assert.equal(row('shop', 'Sender constraint: DPoP'), 'available');
    assert.equal(row('shop', 'JAR encryption'), 'not-configured');
    assert.match(json.stderr, /missing capabilities for frontend bank/);

    const md = await runToExit(['check'], env);
    assert.equal(md.code, 1, md.stderr);
    assert.match(
      md.stdout,
      /# Compliance matrix: .* — frontend shop \(client [^,]+, http:\/\/127\.0\.0\.1:\d+\/shop\/auth\/callback\)/,
    );
    assert.match(md.stdout, /# Compliance matrix: .* — frontend bank /);

    const shopOnly = await runToExit(['check', '--format', 'json', '--frontend', 'shop'], env);
    assert.equal(shopOnly.code, 0, shopOnly.stderr + shopOnly.stdout);
    const shopReport = JSON.parse(shopOnly.stdout) as MultiCheckReport;
    assert.deepEqual(
      shopReport.frontends.map((f) => f.name),
      ['shop'],
    );
  });
});
