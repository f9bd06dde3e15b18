/**
 * Key sets re-read by the running process (the real entry point, `node dist/src/main.js`): after
 * `fapi-bff keys rotate`, `/.well-known/jwks.json` publishes the new key without a restart, on
 * SIGHUP and on a change of the key directory.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { freePort } from '../helpers/bff-harness.js';
import { type MainProcess, startMain } from '../helpers/main-process.js';

const CLI = 'dist/src/cli/fapi-bff.js';

function keysCli(args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, 'keys', ...args], {
    env: { PATH: process.env.PATH ?? '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `keys ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const kidsIn = (dir: string) => readdirSync(dir).map((f) => f.replace(/\.json$/, ''));

describe('key set reload in a running process', () => {
  let idp: DevIdp;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fapi-bff-reload-'));
    idp = await startDevIdp({ clients: [] });
  });
  after(async () => {
    await idp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(keyPath: string): Promise<{ main: MainProcess; url: string }> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const main = startMain({
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: 'reload',
      BFF_JWT_SIGNING_KEY: keyPath,
      MS_BFF_PROFILE: 'development',
      MS_BFF_PUBLIC_URL: url,
      HOST: '127.0.0.1',
      PORT: String(port),
      MS_BFF_ROUTES: '{}',
      MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
      LOG_LEVEL: 'warn',
    });
    for (let i = 0; i < 240; i++) {
      if (
        await fetch(`${url}/healthz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        return { main, url };
      if (main.child.exitCode !== null) throw new Error(`the BFF exited: ${main.stderr()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    await main.stop();
    throw new Error(`the BFF did not become healthy: ${main.stderr()}`);
  }

  async function publishedKids(url: string): Promise<string[]> {
    const res = await fetch(`${url}/.well-known/jwks.json`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { keys: { kid: string }[] };
    return body.keys.map((k) => k.kid);
  }

  /** Polls the JWKS until it lists `kid` (bounded: 80 × 250 ms). */
  async function waitForKid(url: string, kid: string): Promise<boolean> {
    for (let i = 0; i < 80; i++) {
      if ((await publishedKids(url)).includes(kid)) return true;
      await new Promise((r) => setTimeout(r, 250));
    }
    return false;
  }

  it('publishes a rotated key after SIGHUP (the directory swapped behind a symlink, unseen by the watcher)', async () => {
    // The Kubernetes-style update: a new directory is prepared and a symlink swapped atomically;
    // the watch on the old directory sees nothing, so only SIGHUP makes the BFF re-read it.
    const a = join(dir, 'sighup-a');
    const b = join(dir, 'sighup-b');
    keysCli(['generate', '--use', 'sig', '--alg', 'ES256', '--out', a]);
    const link = join(dir, 'sighup-current');
    symlinkSync(a, link);
    const { main, url } = await start(link);
    try {
      const [first] = kidsIn(a);
      assert.deepEqual(await publishedKids(url), [first]);
      cpSync(a, b, { recursive: true });
      keysCli(['rotate', b]);
      const added = kidsIn(b).find((k) => k !== first)!;
      symlinkSync(b, `${link}.new`);
      renameSync(`${link}.new`, link);
      await new Promise((r) => setTimeout(r, 1_000));
      assert.ok(!(await publishedKids(url)).includes(added), 'not picked up before SIGHUP');
      main.child.kill('SIGHUP');
      assert.ok(await waitForKid(url, added), `published after SIGHUP: ${main.stdout()}`);
      assert.ok((await publishedKids(url)).includes(first!), 'the old key stays published');
    } finally {
      await main.stop();
    }
  });

  it('publishes a rotated key after a change of the key directory (no signal)', async () => {
    const d = join(dir, 'watched');
    keysCli(['generate', '--use', 'sig', '--alg', 'ES256', '--out', d]);
    const { main, url } = await start(d);
    try {
      const [first] = kidsIn(d);
      assert.deepEqual(await publishedKids(url), [first]);
      keysCli(['rotate', d]);
      const added = kidsIn(d).find((k) => k !== first)!;
      assert.ok(await waitForKid(url, added), `published after the change: ${main.stdout()}`);
    } finally {
      await main.stop();
    }
  });
});
