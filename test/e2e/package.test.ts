/**
 * The package as a user gets it. `npm pack` (prepack builds the JavaScript and the declarations), the
 * tarball installed into an empty directory (dependencies only, from the npm cache when it has them),
 * then: `npx fapi-bff --help`, a TypeScript consumer type-checked against the shipped declarations,
 * and a small Fastify 5 application that registers the `fapiBff` plugin under a prefix and completes
 * a login against oidc-provider. And a production install from the lockfile (`npm ci --omit=dev`):
 * no development weight, no EBADENGINE, `fapi-bff start` against the IdP logs a user in, and without
 * OIDC_ISSUER it says the development setup is not installed.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { clientMetadata, freePort, makeClientKey } from '../helpers/bff-harness.js';
import { type MainProcess, startMain } from '../helpers/main-process.js';
import { loginAtDevIdp, TestBrowser } from '../helpers/test-browser.js';

const run = promisify(execFile);
/** The repository root (this file runs as dist/test/e2e/package.test.js). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** npm pack (with its build) and installs on a loaded machine: generous, but bounded. */
const NPM_TIMEOUT_MS = 300_000;
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=warn'];

async function npm(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  return run('npm', args, {
    cwd,
    timeout: NPM_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
    // The test runner's npm_* variables (e.g. npm_config_*) must not steer the nested npm.
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k))),
  });
}

/** Logs in through a BFF mounted at `base` (origin + prefix) and returns the browser. */
async function login(base: string, bffPort: number): Promise<TestBrowser> {
  const browser = new TestBrowser();
  const started = await browser.navigate(`${base}/auth/login?returnTo=%2F`, {
    stopWhen: (u) => u.port !== String(bffPort),
  });
  assert.ok(started.stopped, `the login reached the IdP (${started.response.status})`);
  const done = await loginAtDevIdp(browser, started.url, 'alice', 'alice-password', (u) =>
    u.href.startsWith(`${base}/auth/callback`),
  );
  const callback = await browser.request(done.url);
  assert.equal(callback.status, 302, await callback.text());
  assert.equal(callback.headers.get('location'), '/');
  return browser;
}

describe('the fapi-bff package', { timeout: 900_000 }, () => {
  let dir: string;
  let tarball: string;
  let appDir: string;
  let idp: DevIdp;
  let port: number;
  const clientKey = makeClientKey('ES256');
  const children: MainProcess[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fapi-bff-package-'));
    await npm(['pack', '--pack-destination', dir, ...NPM_FLAGS], ROOT);
    const packed = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    assert.ok(packed, 'npm pack wrote a tarball');
    tarball = join(dir, packed);
    appDir = join(dir, 'app');
    mkdirSync(appDir);
    writeFileSync(
      join(appDir, 'package.json'),
      JSON.stringify({ name: 'embedding-app', private: true, type: 'module' }),
    );
    await npm(['install', tarball, 'fastify@5', ...NPM_FLAGS], appDir);

    port = await freePort();
    const key = await clientKey;
    const embedded = clientMetadata('embedding-app', `http://localhost:${port}/bff`, key);
    const standalone = clientMetadata('standalone', `http://localhost:${port}`, key);
    idp = await startDevIdp({
      clients: [
        { ...embedded, post_logout_redirect_uris: [`http://localhost:${port}/`] },
        { ...standalone, client_id: 'standalone' },
      ],
    });
  });

  after(async () => {
    await Promise.all(children.map((c) => c.stop()));
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('installs from the tarball without development dependencies', () => {
    for (const dev of ['oidc-provider', 'playwright-core', 'typescript', 'eslint']) {
      assert.equal(existsSync(join(appDir, 'node_modules', dev)), false, `${dev} is not installed`);
    }
    assert.ok(existsSync(join(appDir, 'node_modules', 'fapi-bff', 'dist', 'src', 'index.d.ts')));
    assert.equal(existsSync(join(appDir, 'node_modules', 'fapi-bff', 'dist', 'test')), false, 'no tests');
  });

  it('runs `npx fapi-bff --help` and `--version`', async () => {
    const help = await run('npx', ['--no-install', 'fapi-bff', '--help'], { cwd: appDir, timeout: 60_000 });
    for (const command of ['start', 'check', 'client-metadata'])
      assert.match(help.stdout, new RegExp(command));
    const version = await run('npx', ['--no-install', 'fapi-bff', '--version'], {
      cwd: appDir,
      timeout: 60_000,
    });
    assert.match(version.stdout, /0\.1\.0/);
  });

  it('type-checks a TypeScript consumer against the shipped declarations', async () => {
    writeFileSync(
      join(appDir, 'consumer.ts'),
      `import Fastify from 'fastify';
import { type BffConfig, buildApp, fapiBff, type FapiBffOptions, loadConfig, MemoryStore } from 'fapi-bff';

const app = Fastify();
const options: FapiBffOptions = { env: { OIDC_ISSUER: 'https://idp.example' }, store: new MemoryStore({ maxEntries: 10 }) };
await app.register(fapiBff, { prefix: '/bff', ...options });
const config: BffConfig = await loadConfig({});
// @ts-expect-error the store must be a KeyValueStore
const wrong: FapiBffOptions = { store: 42 };
export { buildApp, config, wrong };
`,
    );
    writeFileSync(
      join(appDir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2023',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          typeRoots: [join(ROOT, 'node_modules', '@types')],
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: appDir, timeout: 180_000 }).catch(
      (err: { stdout?: string }) => assert.fail(`tsc failed:\n${err.stdout}`),
    );
  });

  it('embeds in a Fastify 5 app under a prefix and completes a login against oidc-provider', async () => {
    writeFileSync(
      join(appDir, 'server.mjs'),
      `import Fastify from 'fastify';
import { fapiBff } from 'fapi-bff';

const app = Fastify();
app.get('/', async () => 'the host application');
await app.register(fapiBff, { prefix: '/bff' });
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
console.log('embedding app ready');
`,
    );
    const key = await clientKey;
    const server = startMain(
      {
        OIDC_ISSUER: idp.issuer,
        OIDC_CLIENT_ID: 'embedding-app',
        BFF_JWT_SIGNING_KEY: JSON.stringify(key.privateJwk),
        MS_BFF_PROFILE: 'development',
        MS_BFF_PUBLIC_URL: `http://localhost:${port}`,
        MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
        PORT: String(port),
      },
      [],
      join(appDir, 'server.mjs'),
    );
    children.push(server);
    await server.waitFor('embedding app ready', 60_000);
    try {
      const base = `http://localhost:${port}/bff`;
      const browser = await login(base, port);
      const session = await browser.request(`${base}/auth/session`);
      assert.equal(session.status, 200);
      const body = await session.json<{ claims: { sub: string }; logoutUrl: string }>();
      assert.equal(body.claims.sub, 'alice');
      assert.match(body.logoutUrl, /^\/bff\/auth\/logout\?sid=/, 'the logout URL carries the prefix');
      // Encapsulated: the host keeps its own routes and 404s; nothing of the BFF outside the prefix.
      assert.equal(await (await browser.request(`http://localhost:${port}/`)).text(), 'the host application');
      const outside = await browser.request(`http://localhost:${port}/auth/session`);
      assert.equal(outside.status, 404);
      assert.doesNotMatch(
        outside.headers.get('content-type') ?? '',
        /problem/,
        "the host's 404, not the BFF's",
      );
    } finally {
      await server.stop();
    }
  });

  it('`npm ci --omit=dev` from the lockfile: no EBADENGINE, no IdP, and `fapi-bff start` logs in', async () => {
    const prod = join(dir, 'prod');
    mkdirSync(prod);
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(prod, f));
    cpSync(join(ROOT, 'dist', 'src'), join(prod, 'dist', 'src'), { recursive: true });
    cpSync(join(ROOT, 'demo'), join(prod, 'demo'), { recursive: true });
    // --ignore-scripts: the compiled output is copied in; no prepare/build step runs in production.
    const ci = await npm(['ci', '--omit=dev', '--ignore-scripts', ...NPM_FLAGS], prod);
    assert.doesNotMatch(`${ci.stdout}${ci.stderr}`, /EBADENGINE/);
    assert.equal(existsSync(join(prod, 'node_modules', 'oidc-provider')), false, 'no development IdP');

    const withoutIssuer = startMain(
      { PORT: '0' },
      ['start'],
      join(prod, 'dist', 'src', 'cli', 'fapi-bff.js'),
    );
    children.push(withoutIssuer);
    assert.equal(await withoutIssuer.exited(60_000), 1);
    assert.match(withoutIssuer.stderr(), /OIDC_ISSUER is not set/);
    assert.match(withoutIssuer.stderr(), /development dependency/);
    assert.doesNotMatch(withoutIssuer.stderr(), /\n\s+at /, 'no stack trace');

    const key = await clientKey;
    const server = startMain(
      {
        OIDC_ISSUER: idp.issuer,
        OIDC_CLIENT_ID: 'standalone',
        BFF_JWT_SIGNING_KEY: JSON.stringify(key.privateJwk),
        // The production profile, with plain HTTP allowed to the loopback IdP only.
        MS_BFF_ALLOW_HTTP_HOSTS: '127.0.0.1,localhost',
        MS_BFF_PUBLIC_URL: `http://localhost:${port}`,
        MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
        HOST: '127.0.0.1',
        PORT: String(port),
      },
      ['start'],
      join(prod, 'dist', 'src', 'cli', 'fapi-bff.js'),
    );
    children.push(server);
    await server.waitFor('listening', 60_000);
    try {
      const browser = await login(`http://localhost:${port}`, port);
      const session = await browser.request(`http://localhost:${port}/auth/session`);
      assert.equal(session.status, 200);
      assert.equal((await session.json<{ claims: { sub: string } }>()).claims.sub, 'alice');
      // The session inspector is development-only: the production profile does not publish it.
      const inspect = await browser.request(`http://localhost:${port}/auth/inspect`);
      assert.equal(inspect.status, 404);
    } finally {
      await server.stop();
    }
  });
});
