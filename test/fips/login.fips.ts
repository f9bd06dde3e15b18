/**
 * FIPS mode proven end to end (seed 000), run by `npm run test:fips`: the real entry point
 * (`node dist/src/main.js`) started with an OpenSSL 3.0 FIPS provider (scripts/fips-provider.sh)
 * and FIPS_MODE=true logs in through oidc-provider with PAR, private_key_jwt, DPoP, signed JAR and
 * encrypted JARM, sessions in Redis. The IdP runs in this (non-FIPS) test process.
 * FAPI_BFF_FIPS_DIR names the provider directory (fips.so, openssl-fips.cnf).
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { loadConfig } from '../../src/config/load.js';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { registrationMetadata } from '../../src/oauth/client-metadata.js';
import { bffEnv, freePort, makeClientKey, REDIS_URL } from '../helpers/bff-harness.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';

const FIPS_DIR = process.env.FAPI_BFF_FIPS_DIR;
if (!FIPS_DIR) throw new Error('FAPI_BFF_FIPS_DIR is not set: run `npm run test:fips`');

interface Child {
  process: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startMain(env: Record<string, string>, fips: boolean): Child {
  const args = fips
    ? [`--openssl-config=${FIPS_DIR}/openssl-fips.cnf`, 'dist/src/main.js']
    : ['dist/src/main.js'];
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', ...(fips ? { OPENSSL_MODULES: FIPS_DIR ?? '' } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  void exited.then(() => clearTimeout(timer));
  return { process: child, output: () => out, exited };
}

async function waitReady(url: string, child: Child): Promise<void> {
  for (let i = 0; i < 240; i++) {
    if (child.process.exitCode !== null) throw new Error(`the BFF exited: ${child.output()}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the BFF did not start: ${child.output()}`);
}

describe('FIPS mode with a real OpenSSL FIPS provider', () => {
  let idp: DevIdp;
  let port: number;
  let env: Record<string, string>;
  let bff: Child | undefined;
  const tokenRequests: { dpop: boolean }[] = [];
  const pars: string[] = [];

  before(async () => {
    port = await freePort();
    const key = await makeClientKey('ES256');
    const { privateKey } = await generateKeyPair('RSA-OAEP-256', { extractable: true, modulusLength: 2048 });
    const encPrivate: JWK = {
      ...(await exportJWK(privateKey)),
      kid: 'fips-enc',
      alg: 'RSA-OAEP-256',
      use: 'enc',
    };
    const idpPort = await freePort();
    const issuer = `http://127.0.0.1:${idpPort}`;
    env = bffEnv({
      port,
      issuer,
      clientId: 'bff-fips',
      key,
      env: {
        FIPS_MODE: 'true',
        LOG_LEVEL: 'info',
        REDIS_URL,
        MS_BFF_REDIS_KEY_PREFIX: `bff-fips:${randomBytes(6).toString('hex')}:`,
        MS_BFF_DPOP_ENABLED: 'true',
        MS_BFF_JAR_ENABLED: 'true',
        MS_BFF_JARM_ENABLED: 'true',
        MS_BFF_JARM_MODE: 'query.jwt',
        MS_BFF_JARM_ENC_ALG: 'RSA-OAEP-256',
        MS_BFF_JARM_ENC_ENC: 'A256GCM',
        BFF_JARM_PRIV_KEY: JSON.stringify(encPrivate),
      },
    });
    // Registered exactly as the BFF describes itself; oidc-provider fetches our jwks_uri.
    const metadata = registrationMetadata(await loadConfig({ ...env, FIPS_MODE: 'false' }));
    idp = await startDevIdp({
      port: idpPort,
      encryption: true,
      clients: [{ ...metadata, dpop_bound_access_tokens: true }],
      dpop: { requireNonce: true },
    });
    idp.provider.on('grant.success', (ctx: { get(h: string): string }) => {
      tokenRequests.push({ dpop: Boolean(ctx.get('dpop')) });
    });
    idp.provider.on(
      'pushed_authorization_request.success',
      (ctx: { oidc: { params?: Record<string, unknown> } }) => {
        pars.push(
          Object.keys(ctx.oidc.params ?? {})
            .sort()
            .join(','),
        );
      },
    );
  });
  after(async () => {
    bff?.process.kill('SIGTERM');
    await bff?.exited;
    await idp?.close();
  });

  it('logs in with PAR, private_key_jwt, DPoP, JAR and encrypted JARM, sessions in Redis', async () => {
    bff = startMain(env, true);
    const url = `http://127.0.0.1:${port}`;
    await waitReady(url, bff);
    const browser = new TestBrowser();
    const done = await fullLogin(browser, url, idp);
    assert.equal(done.status, 302, await done.text());
    const session = await apiCall(browser, url, '/auth/session');
    assert.equal(session.status, 200, await session.text());
    assert.ok(
      tokenRequests.length > 0 && tokenRequests.every((t) => t.dpop),
      'DPoP proofs at the token endpoint',
    );
    assert.ok(
      pars.length > 0 && pars.every((p) => p.includes('request')),
      `signed request objects via PAR: ${pars.join(' | ')}`,
    );

    const ready = (await (await fetch(`${url}/readyz`)).json()) as {
      fips_mode: boolean;
      fips: {
        fips_mode: boolean;
        providers: string[];
        self_test: { passed: boolean; checks: { name: string; ok: boolean }[] };
        tls: { ciphers: string; ecdh_curve: string };
      };
    };
    assert.equal(ready.fips_mode, true);
    assert.equal(ready.fips.self_test.passed, true);
    assert.deepEqual([...ready.fips.providers].sort(), ['base', 'fips']);
    assert.equal(ready.fips.tls.ecdh_curve, 'P-256:P-384');
    assert.doesNotMatch(ready.fips.tls.ciphers, /CHACHA20/);
    assert.match(bff.output(), /FIPS mode: self-test passed/);
    process.stdout.write(`\nBFF FIPS evidence (/readyz):\n${JSON.stringify(ready.fips, null, 2)}\n`);
    const line = bff
      .output()
      .split('\n')
      .find((l) => l.includes('FIPS mode: self-test passed'));
    process.stdout.write(`BFF FIPS startup log line:\n${line}\n\n`);
  });

  it('refuses to start in FIPS mode with an EdDSA signing key', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), kid: 'ed', alg: 'EdDSA', use: 'sig' };
    const child = startMain(
      { ...env, PORT: String(await freePort()), BFF_JWT_SIGNING_KEY: JSON.stringify(jwk) },
      true,
    );
    assert.equal(await child.exited, 1);
    assert.match(child.output(), /BFF_JWT_SIGNING_KEY/);
    assert.match(child.output(), /not FIPS-approved/);
  });

  it('refuses to start with FIPS_MODE=true without the provider', async () => {
    const child = startMain({ ...env, PORT: String(await freePort()) }, false);
    assert.equal(await child.exited, 1);
    assert.match(child.output(), /FIPS_MODE/);
    assert.match(child.output(), /not running with a FIPS provider/);
    assert.match(child.output(), /--openssl-config/);
  });
});
