/**
 * Configuration of the served SPA (src/config/rules/spa.ts): a directory or a frontend origin, never
 * both; the directory exists and holds index.html; the origin is https in production except on
 * loopback or an allowed host; the CSP and extra headers are checked. Every problem at once.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { frontendKey, VARIABLES } from '../../src/config/variables.js';
import { configProblems, minimalEnv } from '../helpers/bff-harness.js';

let base: Record<string, string>;
let root: string;
let spaDir: string;

describe('SPA configuration', () => {
  before(async () => {
    base = await minimalEnv();
    root = mkdtempSync(join(tmpdir(), 'spa-config-'));
    spaDir = join(root, 'dist');
    mkdirSync(spaDir);
    writeFileSync(join(spaDir, 'index.html'), '<!doctype html><title>x</title>');
    mkdirSync(join(root, 'empty'));
    writeFileSync(join(root, 'file.txt'), 'x');
    symlinkSync(spaDir, join(root, 'link'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('has no SPA unless a directory or an origin is configured', async () => {
    assert.equal((await loadConfig(base)).spa, undefined);
  });

  it('serves a directory by its real path, with the default CSP and security headers', async () => {
    const config = await loadConfig({ ...base, MS_BFF_STATIC_DIR: join(root, 'link') });
    assert.equal(config.spa?.kind, 'static');
    assert.equal(config.spa?.kind === 'static' && config.spa.dir, realpathSync(spaDir));
    const headers = new Map(config.spa?.headers);
    assert.equal(headers.get('content-security-policy'), VARIABLES.MS_BFF_SPA_CSP.default);
    assert.match(headers.get('content-security-policy') ?? '', /script-src 'self';/);
    assert.doesNotMatch(headers.get('content-security-policy') ?? '', /unsafe/);
    assert.equal(headers.get('x-content-type-options'), 'nosniff');
    assert.equal(headers.get('cross-origin-opener-policy'), 'same-origin');
    // Production over https: HSTS on the pages too.
    assert.match(headers.get('strict-transport-security') ?? '', /max-age=63072000/);
    const dev = await loadConfig({ ...base, MS_BFF_PROFILE: 'development', MS_BFF_STATIC_DIR: spaDir });
    assert.equal(new Map(dev.spa?.headers).get('strict-transport-security'), undefined);
  });

  it('refuses a directory that is missing, not a directory, or without index.html', async () => {
    for (const [dir, message] of [
      [join(root, 'nope'), /cannot be read .*ENOENT/],
      [join(root, 'file.txt'), /is not a directory/],
      [join(root, 'empty'), /holds no index.html/],
    ] as const) {
      const found = await configProblems({ ...base, MS_BFF_STATIC_DIR: dir });
      assert.match(found.get('MS_BFF_STATIC_DIR') ?? '', message, dir);
    }
  });

  it('refuses both a directory and an origin', async () => {
    const found = await configProblems({
      ...base,
      MS_BFF_STATIC_DIR: spaDir,
      MS_BFF_FRONTEND_URL: 'https://cdn.example.com/app/',
    });
    assert.match(found.get('MS_BFF_FRONTEND_URL') ?? '', /either MS_BFF_STATIC_DIR or MS_BFF_FRONTEND_URL/);
    // Each is still checked: every problem at once.
    const all = await configProblems({
      ...base,
      MS_BFF_STATIC_DIR: join(root, 'nope'),
      MS_BFF_FRONTEND_URL: 'http://cdn.example.com/',
    });
    assert.match(all.get('MS_BFF_STATIC_DIR') ?? '', /cannot be read/);
    assert.match(all.get('MS_BFF_FRONTEND_URL') ?? '', /plain HTTP is refused.*\| set either/);
  });

  it('takes an origin with a base path, normalised to end in /', async () => {
    const config = await loadConfig({ ...base, MS_BFF_FRONTEND_URL: 'https://cdn.example.com/banking' });
    assert.equal(config.spa?.kind, 'origin');
    assert.equal(config.spa?.kind === 'origin' && config.spa.url.href, 'https://cdn.example.com/banking/');
  });

  it('refuses a plain-HTTP origin in production, except loopback and allowed hosts', async () => {
    const found = await configProblems({ ...base, MS_BFF_FRONTEND_URL: 'http://cdn.example.com/' });
    assert.match(found.get('MS_BFF_FRONTEND_URL') ?? '', /plain HTTP is refused in production/);
    for (const url of ['http://127.0.0.1:5173/', 'http://localhost:5173/', 'http://[::1]:5173/']) {
      const config = await loadConfig({ ...base, MS_BFF_FRONTEND_URL: url });
      assert.equal(config.spa?.kind, 'origin', url);
    }
    const allowed = await loadConfig({
      ...base,
      MS_BFF_FRONTEND_URL: 'http://spa.internal/',
      MS_BFF_ALLOW_HTTP_HOSTS: 'spa.internal',
    });
    assert.equal(allowed.spa?.kind, 'origin');
    const dev = await loadConfig({
      ...base,
      MS_BFF_PROFILE: 'development',
      MS_BFF_FRONTEND_URL: 'http://cdn.example.com/',
    });
    assert.ok(dev.warnings.some((w) => /MS_BFF_FRONTEND_URL uses plain HTTP/.test(w)));
  });

  it('refuses an origin with a query or fragment', async () => {
    const found = await configProblems({ ...base, MS_BFF_FRONTEND_URL: 'https://cdn.example.com/?v=1' });
    assert.match(found.get('MS_BFF_FRONTEND_URL') ?? '', /query or fragment/);
  });

  it('applies MS_BFF_SPA_CSP and MS_BFF_SPA_HEADERS, "" removing a default', async () => {
    const config = await loadConfig({
      ...base,
      MS_BFF_STATIC_DIR: spaDir,
      MS_BFF_SPA_CSP: "default-src 'self'; connect-src 'self' https://api.example.com",
      MS_BFF_SPA_HEADERS: JSON.stringify({
        'Permissions-Policy': 'camera=()',
        'Cross-Origin-Opener-Policy': '',
        'Content-Security-Policy-Report-Only': "default-src 'none'",
      }),
    });
    const headers = new Map(config.spa?.headers);
    assert.equal(
      headers.get('content-security-policy'),
      "default-src 'self'; connect-src 'self' https://api.example.com",
    );
    assert.equal(headers.get('permissions-policy'), 'camera=()');
    assert.equal(headers.has('cross-origin-opener-policy'), false);
    assert.equal(headers.get('content-security-policy-report-only'), "default-src 'none'");
  });

  it('warns about unsafe script sources in the CSP', async () => {
    const config = await loadConfig({
      ...base,
      MS_BFF_STATIC_DIR: spaDir,
      MS_BFF_SPA_CSP: "default-src 'self'; script-src 'self' 'unsafe-inline'",
    });
    assert.ok(config.warnings.some((w) => /MS_BFF_SPA_CSP allows 'unsafe-inline'/.test(w)));
    assert.ok(!(await loadConfig(base)).warnings.some((w) => /MS_BFF_SPA_CSP/.test(w)));
  });

  it('reports every header problem at once, with the directory and CSP problems', async () => {
    const found = await configProblems({
      ...base,
      MS_BFF_STATIC_DIR: join(root, 'empty'),
      MS_BFF_SPA_CSP: "default-src 'self'\r\nSet-Cookie: x=1",
      MS_BFF_SPA_HEADERS: JSON.stringify({
        'Set-Cookie': 'a=b',
        'Cache-Control': 'public',
        'Content-Type': 'text/plain',
        'Content-Security-Policy': 'default-src *',
        'Bad Name': 'x',
        'X-Ok': 'line\nbreak',
        'X-Number': 3,
      }),
    });
    assert.match(found.get('MS_BFF_STATIC_DIR') ?? '', /holds no index.html/);
    assert.match(found.get('MS_BFF_SPA_CSP') ?? '', /one line/);
    const headers = found.get('MS_BFF_SPA_HEADERS') ?? '';
    for (const expected of [
      /Set-Cookie may not be set here/,
      /Cache-Control may not be set here/,
      /Content-Type may not be set here/,
      /Content-Security-Policy may not be set here/,
      /"Bad Name" is not a header name/,
      /X-Ok must be a string of visible characters/,
      /X-Number must be a string of visible characters/,
    ])
      assert.match(headers, expected);
    assert.match(
      (await configProblems({ ...base, MS_BFF_SPA_HEADERS: '[1]' })).get('MS_BFF_SPA_HEADERS') ?? '',
      /must be a JSON object/,
    );
    assert.match(
      (await configProblems({ ...base, MS_BFF_SPA_HEADERS: '{' })).get('MS_BFF_SPA_HEADERS') ?? '',
      /not valid JSON/,
    );
  });

  it('takes static, frontendUrl, spaCsp and spaHeaders per frontend of the config file', async () => {
    const file = join(root, 'bff.json');
    const { OIDC_CLIENT_ID: _c, MS_BFF_PUBLIC_URL: _p, ...env } = base;
    const front = (extra: object) => ({
      publicUrl: 'https://www.example.com',
      clientId: 'bff',
      ...extra,
    });
    writeFileSync(
      file,
      JSON.stringify({
        frontends: [
          front({ name: 'main', static: spaDir, spaCsp: "default-src 'self'" }),
          front({ name: 'shop', pathPrefix: '/shop/', frontendUrl: 'https://cdn.example.com/shop' }),
          front({ name: 'none', pathPrefix: '/none/' }),
        ],
      }),
    );
    const config = await loadConfig({ ...env, MS_BFF_CONFIG: file });
    const [main, shop, none] = config.frontends;
    assert.equal(main?.config.spa?.kind, 'static');
    assert.equal(new Map(main?.config.spa?.headers).get('content-security-policy'), "default-src 'self'");
    assert.equal(
      shop?.config.spa?.kind === 'origin' && shop.config.spa.url.href,
      'https://cdn.example.com/shop/',
    );
    assert.equal(none?.config.spa, undefined);

    writeFileSync(
      file,
      JSON.stringify({
        frontends: [
          front({ name: 'main', static: join(root, 'nope') }),
          front({
            name: 'shop',
            pathPrefix: '/shop/',
            static: spaDir,
            frontendUrl: 'https://cdn.example.com/',
          }),
          front({ name: 'bad', pathPrefix: '/bad/', spaHeaders: '{"Set-Cookie":"a=b"}' }),
        ],
      }),
    );
    const found = await configProblems({ ...env, MS_BFF_CONFIG: file });
    assert.match(found.get('MS_BFF_CONFIG.frontends[0].static') ?? '', /cannot be read/);
    assert.match(found.get('MS_BFF_CONFIG.frontends[1].frontendUrl') ?? '', /not both/);
    assert.match(found.get('MS_BFF_CONFIG.frontends[2].spaHeaders') ?? '', /Set-Cookie may not be set here/);
  });

  it('takes spaHeaders as an object in a YAML config file', async () => {
    const file = join(root, 'bff.yaml');
    const { OIDC_CLIENT_ID: _c, MS_BFF_PUBLIC_URL: _p, ...env } = base;
    writeFileSync(
      file,
      [
        'frontends:',
        '  - name: main',
        '    publicUrl: https://www.example.com',
        '    clientId: bff',
        `    static: ${spaDir}`,
        '    spaHeaders: { Permissions-Policy: "camera=()", Cross-Origin-Opener-Policy: "" }',
        '',
      ].join('\n'),
    );
    const headers = new Map(
      (await loadConfig({ ...env, MS_BFF_CONFIG: file })).frontends[0]?.config.spa?.headers,
    );
    assert.equal(headers.get('permissions-policy'), 'camera=()');
    assert.equal(headers.has('cross-origin-opener-policy'), false);
  });

  it('names the per-frontend keys of the config file as the contract fixes them', () => {
    assert.equal(frontendKey('MS_BFF_STATIC_DIR'), 'static');
    assert.equal(frontendKey('MS_BFF_FRONTEND_URL'), 'frontendUrl');
    assert.equal(frontendKey('MS_BFF_SPA_CSP'), 'spaCsp');
    assert.equal(frontendKey('MS_BFF_SPA_HEADERS'), 'spaHeaders');
    for (const name of [
      'MS_BFF_STATIC_DIR',
      'MS_BFF_FRONTEND_URL',
      'MS_BFF_SPA_CSP',
      'MS_BFF_SPA_HEADERS',
    ] as const)
      assert.equal(VARIABLES[name].frontend, true, name);
  });
});
