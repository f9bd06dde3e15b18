/**
 * The `fapi-bff` command: one dispatcher, `--help` on every subcommand, `--version`, usage errors
 * with exit status 2. Spawns the compiled entry point as `npx fapi-bff` would.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
