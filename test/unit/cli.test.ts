/**
 * The `fapi-bff` command: one dispatcher, `--help` on every subcommand, `--version`, usage errors
 * with exit status 2. Spawns the compiled entry point as `npx fapi-bff` would.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const CLI = 'dist/src/cli/fapi-bff.js';
const run = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
    timeout: 30_000,
  });

describe('fapi-bff command', () => {
  it('prints its version from package.json', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
      version: string;
      bin: Record<string, string>;
    };
    const r = run('--version');
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim(), pkg.version);
    assert.equal(pkg.bin['fapi-bff'], CLI);
  });

  it('lists every subcommand in --help, and each has its own --help', () => {
    const r = run('--help');
    assert.equal(r.status, 0);
    const commands = r.stdout.slice(r.stdout.indexOf('Commands:'), r.stdout.indexOf('Options:'));
    const names = [...commands.matchAll(/^ {2}([a-z-]+) {2,}/gm)].map((m) => m[1] ?? '');
    for (const name of ['start', 'check', 'client-metadata']) assert.ok(names.includes(name), name);
    for (const name of names) {
      const sub = run(name, '--help');
      assert.equal(sub.status, 0, `${name} --help: ${sub.stderr}`);
      assert.match(sub.stdout, new RegExp(`^Usage: fapi-bff ${name}`), name);
    }
  });

  it('answers an unknown command or flag with its usage and exit status 2', () => {
    const unknown = run('frobnicate');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    const flag = run('client-metadata', '--bogus');
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /Usage: fapi-bff client-metadata/);
  });

  it('client-metadata prints the client of one frontend of the config file, under its pathPrefix', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bff-cli-frontends-'));
    const file = join(dir, 'bff.json');
    writeFileSync(
      file,
      JSON.stringify({
        frontends: [
          { name: 'bank', host: 'bank.example.com', publicUrl: 'https://bank.example.com', clientId: 'bank' },
          { name: 'admin', pathPrefix: '/admin/', publicUrl: 'https://www.example.com', clientId: 'admin' },
        ],
      }),
    );
    const env = {
      PATH: process.env.PATH ?? '',
      OIDC_ISSUER: 'https://idp.example.com',
      MS_BFF_TOKEN_AUTH_METHOD: 'client_secret_basic',
      OIDC_CLIENT_SECRET: 'secret-of-at-least-32-characters-long!!',
      MS_BFF_PROFILE: 'development',
      MS_BFF_CONFIG: file,
    };
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [CLI, 'client-metadata', ...args], {
        encoding: 'utf8',
        env,
        timeout: 30_000,
      });
    const admin = cli('--frontend', 'admin');
    assert.equal(admin.status, 0, admin.stderr);
    const md = JSON.parse(admin.stdout) as Record<string, unknown>;
    assert.deepEqual(md.redirect_uris, ['https://www.example.com/admin/auth/callback']);
    assert.equal(md.backchannel_logout_uri, 'https://www.example.com/admin/auth/backchannel-logout');
    const none = cli();
    assert.equal(none.status, 2, none.stderr);
    assert.match(none.stderr, /several frontends: name one with --frontend \(bank, admin\)/);
    assert.match(cli('--frontend', 'nope').stderr, /no frontend named nope/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports an invalid configuration with every problem and exit status 1', () => {
    const r = spawnSync(process.execPath, [CLI, 'client-metadata'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', OIDC_ISSUER: 'not a url', MS_BFF_PAR_ENABLED: 'maybe' },
      timeout: 30_000,
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /OIDC_ISSUER/);
    assert.match(r.stderr, /MS_BFF_PAR_ENABLED/);
  });
});
