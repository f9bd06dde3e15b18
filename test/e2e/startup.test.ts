/**
 * Startup: discovery from the issuer identifier, the capability check that fails fast naming every
 * gap, refusal to start on bad configuration (the real entry point, as `npm start` runs it), and
 * serving on the last good metadata when a later refresh fails.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { BffError } from '../../src/errors.js';
import { IdpClient } from '../../src/oauth/idp-client.js';
import { Metrics } from '../../src/observability/metrics.js';
import { freePort, makeClientKey } from '../helpers/bff-harness.js';
import type { HostileIdp } from '../helpers/hostile-idp.js';
import { startHostileIdpFor } from '../helpers/stack.js';
import { CLI, runToExit } from '../helpers/main-process.js';

const silent = { warn() {}, info() {} };
/** The real entry point (what `npm start` runs) or, with `script`, the CLI, run to completion. */
const runMain = (env: Record<string, string>, script = 'dist/src/main.js', args: string[] = []) =>
  runToExit(args, env, { script, ms: 20_000 });

describe('startup', () => {
  let idp: HostileIdp;
  let env: Record<string, string>;

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startHostileIdpFor('bff-startup', port, key);
    env = {
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: 'bff-startup',
      BFF_JWT_SIGNING_KEY: JSON.stringify(key.privateJwk),
      MS_BFF_PROFILE: 'development',
      MS_BFF_PUBLIC_URL: `http://127.0.0.1:${port}`,
      MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
    };
  });
  after(async () => idp?.close());

  it('refuses to start naming every missing capability', async () => {
    idp.misbehave({
      omitMetadata: [
        'pushed_authorization_request_endpoint',
        'authorization_response_iss_parameter_supported',
      ],
      overrideMetadata: {
        code_challenge_methods_supported: ['plain'],
        id_token_signing_alg_values_supported: ['RS256'],
      },
    });
    try {
      const err = await IdpClient.create(
        await loadConfig(env),
        new Metrics({ defaultMetrics: false }),
        silent,
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof BffError);
      assert.equal(err.code, 'BFF_IDP_CAPABILITY_MISSING');
      for (const gap of [
        'pushed_authorization_request_endpoint',
        'authorization_response_iss_parameter_supported',
        'S256',
        'PS256',
      ]) {
        assert.ok(err.detail?.includes(gap), `names ${gap}: ${err.detail}`);
      }
      const run = await runMain(env);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /BFF_IDP_CAPABILITY_MISSING/);
      assert.match(run.stderr, /pushed_authorization_request_endpoint/);
    } finally {
      idp.misbehave({});
    }
  });

  it('prints the compliance matrix and fails the gate when the IdP lacks a capability (fapi-bff check)', async () => {
    const ok = await runMain({ ...env, MS_BFF_JAR_ENABLED: 'true' }, CLI, ['check']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /\| PAR \| Required \| Required \| .* \| enabled \|/);
    assert.match(
      ok.stdout,
      /\| JAR \(signed request objects\) \| Recommended \| Required \| .*\(ES256\).* \| enabled \|/,
    );
    assert.match(ok.stdout, /\| JARM \| .* \| (available|not-configured) \|/);
    idp.misbehave({ omitMetadata: ['pushed_authorization_request_endpoint'] });
    try {
      const gate = await runMain(env, CLI, ['check', '--format', 'json']);
      assert.equal(gate.code, 1);
      const report = JSON.parse(gate.stdout) as {
        ok: boolean;
        rows: { requirement: string; status: string }[];
      };
      assert.equal(report.ok, false);
      assert.equal(report.rows.find((r) => r.requirement === 'PAR')?.status, 'missing');
    } finally {
      idp.misbehave({});
    }
    const offline = await runMain({ ...env, OIDC_ISSUER: 'http://127.0.0.1:1' }, CLI, ['check', '--offline']);
    assert.equal(offline.code, 0, offline.stderr);
  });

  it('prints the registration metadata the IdP needs (npm run client-metadata)', async () => {
    const run = await runMain(
      { ...env, MS_BFF_JAR_ENABLED: 'true', MS_BFF_JARM_ENABLED: 'true', MS_BFF_JARM_MODE: 'form_post.jwt' },
      CLI,
      ['client-metadata'],
    );
    assert.equal(run.code, 0, run.stderr);
    const md = JSON.parse(run.stdout) as Record<string, unknown>;
    assert.equal(md.token_endpoint_auth_method, 'private_key_jwt');
    assert.equal(md.require_signed_request_object, true);
    assert.equal(md.request_object_signing_alg, 'ES256');
    assert.deepEqual(md.response_modes, ['form_post.jwt']);
    assert.equal(md.authorization_signed_response_alg, 'PS256');
    assert.match(String(md.jwks_uri), /\/\.well-known\/jwks\.json$/);
  });

  it('refuses an IdP whose metadata names another issuer (mix-up, SP-C11)', async () => {
    idp.misbehave({ metadataIssuer: `${idp.issuer}INVALID` });
    try {
      await assert.rejects(
        IdpClient.create(await loadConfig(env), new Metrics({ defaultMetrics: false }), silent),
        BffError,
      );
    } finally {
      idp.misbehave({});
    }
  });

  it('keeps serving on the last good metadata when a refresh fails', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const client = await IdpClient.create(await loadConfig(env), metrics, silent);
    const before = client.configuration;
    idp.misbehave({ down: true });
    try {
      assert.equal(await client.refreshMetadata(), false);
      assert.equal(client.configuration, before);
      assert.match(await metrics.render(), /bff_discovery_refresh_failures_total 1/);
    } finally {
      idp.misbehave({});
    }
    assert.equal(await client.refreshMetadata(), true);
  });

  it('exits non-zero listing every configuration problem, each with its variable', async () => {
    const run = await runMain({
      OIDC_ISSUER: 'http://idp.example.com',
      OIDC_CLIENT_ID: 'x',
      MS_BFF_PROFILE: 'production',
      MS_BFF_TOKEN_AUTH_METHOD: 'client_secret_post',
      MS_BFF_CSRF_ENABLED: 'false',
    });
    assert.equal(run.code, 1);
    for (const variable of [
      'OIDC_ISSUER',
      'MS_BFF_TOKEN_AUTH_METHOD',
      'OIDC_CLIENT_SECRET',
      'MS_BFF_SESSION_KEYS',
      'MS_BFF_CSRF_ENABLED',
      'MS_BFF_PUBLIC_URL',
    ]) {
      assert.match(run.stderr, new RegExp(`- ${variable}: `), `${variable} listed`);
    }
  });

  it('exits non-zero with a clear message when the IdP cannot be reached', async () => {
    const port = await freePort();
    const run = await runMain({
      ...env,
      OIDC_ISSUER: `http://127.0.0.1:${port}`,
      MS_BFF_IDP_TIMEOUT_MS: '500',
    });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /BFF_IDP_UNAVAILABLE/);
  });
});
