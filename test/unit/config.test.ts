import { strict as assert } from 'node:assert';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exportPKCS8, generateKeyPair } from 'jose';
import { isSafeRelativePath, loadConfig } from '../../src/config/load.js';
import { configProblems, minimalEnv } from '../helpers/bff-harness.js';

const sessionKey = () => randomBytes(32).toString('base64url');

const validProduction = () =>
  minimalEnv({
    MS_BFF_ROUTES:
      '{"orders":"https://orders.internal.example.com/v1","public":{"url":"https://pub.example.com","token":"none","timeoutMs":5000}}',
  });

describe('configuration', () => {
  it('parses a valid production configuration into a frozen object', async () => {
    const config = await loadConfig(await validProduction());
    assert.equal(config.profile, 'production');
    assert.equal(config.redirectUri, 'https://app.example.com/auth/callback');
    assert.equal(config.oidc.tokenAuthMethod, 'private_key_jwt');
    assert.equal(config.signingKey?.alg, 'ES256');
    assert.equal(config.signingKey?.publicJwk.d, undefined, 'public JWK has no private part');
    assert.equal(config.routes.get('orders')?.token, 'user');
    assert.equal(config.routes.get('public')?.token, 'none');
    assert.equal(config.routes.get('public')?.timeoutMs, 5000);
    assert.equal(config.session.cookieName, '__Host-bff-session');
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.oidc));
    assert.throws(() => {
      (config.oidc as { clientId: string }).clientId = 'x';
    });
  });

  it('reports every production refusal at once, each with its variable', async () => {
    const env = {
      ...(await validProduction()),
      OIDC_ISSUER: 'http://idp.example.com',
      MS_BFF_TOKEN_AUTH_METHOD: 'client_secret_post',
      OIDC_CLIENT_SECRET: 's3cret',
      MS_BFF_SESSION_KEYS: undefined,
      MS_BFF_CSRF_ENABLED: 'false',
      MS_BFF_ROUTES: '{"api":"http://api.example.com"}',
    };
    const found = await configProblems(env);
    assert.match(found.get('OIDC_ISSUER') ?? '', /plain HTTP is refused in production/);
    assert.match(found.get('MS_BFF_TOKEN_AUTH_METHOD') ?? '', /client_secret_post is refused in production/);
    assert.match(found.get('MS_BFF_SESSION_KEYS') ?? '', /required in production/);
    assert.match(found.get('MS_BFF_CSRF_ENABLED') ?? '', /refused in production/);
    assert.match(found.get('MS_BFF_ROUTES.api') ?? '', /plain HTTP is refused/);
  });

  it('requires a signing key for private_key_jwt', async () => {
    const env = { ...(await validProduction()), BFF_JWT_SIGNING_KEY: undefined };
    assert.match(
      (await configProblems(env)).get('BFF_JWT_SIGNING_KEY') ?? '',
      /required for private_key_jwt/,
    );
  });

  it('allows plain HTTP only for hosts in MS_BFF_ALLOW_HTTP_HOSTS, with a warning', async () => {
    const env = {
      ...(await validProduction()),
      OIDC_ISSUER: 'http://idp.internal:8080',
      MS_BFF_ALLOW_HTTP_HOSTS: 'idp.internal',
    };
    const config = await loadConfig(env);
    assert.equal(config.oidc.allowInsecureIssuer, true);
    assert.ok(config.warnings.some((w) => w.includes('idp.internal')));
  });

  it('allows unsafe settings in development, loudly', async () => {
    const config = await loadConfig({
      ...(await validProduction()),
      MS_BFF_PROFILE: 'development',
      OIDC_ISSUER: 'http://127.0.0.1:9999',
      MS_BFF_TOKEN_AUTH_METHOD: 'client_secret_post',
      OIDC_CLIENT_SECRET: 'x',
      MS_BFF_CSRF_ENABLED: 'false',
    });
    assert.equal(config.csrf.enabled, false);
    assert.ok(config.warnings.length >= 3);
  });

  it('refuses a well-known URL as the issuer, bad keys, bad values and planned features', async () => {
    const found = await configProblems({
      ...(await validProduction()),
      OIDC_ISSUER: 'https://idp.example.com/.well-known/openid-configuration',
      MS_BFF_SESSION_KEYS: 'short,also-short',
      MS_BFF_COOKIE_NAME: 'bff-session',
      MS_BFF_SESSION_IDLE_TIMEOUT: 'soon',
      MTLS_CERT: '/etc/bff/client.pem',
      MS_BFF_JAR_ALGS_ALLOWED: 'PS256,none',
      BFF_JWT_SIGNING_ALG: 'RS256',
      MS_BFF_ROUTES: '{"bad name":"https://x.example.com"}',
    });
    assert.match(found.get('OIDC_ISSUER') ?? '', /issuer identifier, not a discovery URL/);
    assert.match(found.get('MS_BFF_SESSION_KEYS') ?? '', /32 are required/);
    assert.match(found.get('MS_BFF_COOKIE_NAME') ?? '', /__Host-/);
    assert.match(found.get('MS_BFF_SESSION_IDLE_TIMEOUT') ?? '', /integer/);
    assert.match(found.get('MTLS_CERT') ?? '', /cannot read key file/);
    assert.match(found.get('MS_BFF_JAR_ALGS_ALLOWED') ?? '', /none is not allowed/);
    assert.match(found.get('BFF_JWT_SIGNING_ALG') ?? '', /PS256, ES256/);
    assert.match(found.get('MS_BFF_ROUTES.bad name') ?? '', /route names/);
  });

  it('keeps mTLS consistent: certificate for tls methods and mtls routes, one token binding per client', async () => {
    const found = await configProblems({
      ...(await validProduction()),
      MS_BFF_TOKEN_AUTH_METHOD: 'tls_client_auth',
      MS_BFF_DPOP_ENABLED: 'true',
      MS_BFF_ROUTES: '{"api":{"url":"https://api.example.com","mtls":true}}',
    });
    assert.match(found.get('MTLS_CERT') ?? '', /required for tls_client_auth/);
    assert.match(found.get('MTLS_CERT') ?? '', /certificate-bound tokens/);
    assert.match(found.get('MS_BFF_DPOP_ENABLED') ?? '', /exclusive/);
    const swapped = await configProblems({
      ...(await validProduction()),
      MTLS_CERT: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----',
      MTLS_KEY: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----',
    });
    assert.match(swapped.get('MTLS_CERT') ?? '', /CERTIFICATE block/);
    assert.match(swapped.get('MTLS_KEY') ?? '', /PRIVATE KEY block/);
  });

  it('reads secrets from *_FILE and refuses both forms at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bff-config-'));
    const keys = `${sessionKey()},${sessionKey()}`;
    writeFileSync(join(dir, 'keys'), `${keys}\n`);
    const { privateKey } = await generateKeyPair('PS256', { extractable: true });
    writeFileSync(join(dir, 'sig.pem'), await exportPKCS8(privateKey));
    const base = await validProduction();
    const config = await loadConfig({
      ...base,
      MS_BFF_SESSION_KEYS: undefined,
      MS_BFF_SESSION_KEYS_FILE: join(dir, 'keys'),
      BFF_JWT_SIGNING_KEY: join(dir, 'sig.pem'),
    });
    assert.equal(config.session.keys.length, 2);
    assert.equal(config.signingKey?.alg, 'PS256');
    const found = await configProblems({ ...base, MS_BFF_SESSION_KEYS_FILE: join(dir, 'keys') });
    assert.match(found.get('MS_BFF_SESSION_KEYS') ?? '', /either/);
    const missing = await configProblems({
      ...base,
      MS_BFF_SESSION_KEYS: undefined,
      MS_BFF_SESSION_KEYS_FILE: join(dir, 'nope'),
    });
    assert.match(missing.get('MS_BFF_SESSION_KEYS_FILE') ?? '', /ENOENT/);
  });

  it('refuses RSA keys shorter than 2048 bits (FAPI 2.0 §5.4.1)', async () => {
    // jose refuses to generate such a key, so node:crypto makes it.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const found = await configProblems({
      ...(await validProduction()),
      BFF_JWT_SIGNING_KEY: pem,
      BFF_JWT_SIGNING_ALG: 'PS256',
    });
    assert.match(found.get('BFF_JWT_SIGNING_KEY') ?? '', /2048/);
  });

  it('merges a YAML or JSON config file under the environment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bff-config-'));
    const file = join(dir, 'bff.yaml');
    writeFileSync(
      file,
      'OIDC_SCOPES: openid email\nMS_BFF_COOKIE_SAMESITE: strict\nroutes:\n  orders: https://orders.example.com\n  feed:\n    url: https://feed.example.com\n    token: none\n',
    );
    const env = {
      ...(await validProduction()),
      MS_BFF_ROUTES: undefined,
      MS_BFF_CONFIG: file,
      MS_BFF_COOKIE_SAMESITE: 'lax',
    };
    const config = await loadConfig(env);
    assert.equal(config.oidc.scopes, 'openid email');
    assert.equal(config.session.sameSite, 'lax', 'the environment wins');
    assert.equal(config.routes.get('feed')?.token, 'none');
    writeFileSync(file, 'NOT_A_VARIABLE: 1\n');
    assert.match(
      (await configProblems(env)).get('MS_BFF_CONFIG.NOT_A_VARIABLE') ?? '',
      /not a known variable/,
    );
  });

  it('accepts only same-origin relative paths for redirects', () => {
    for (const ok of ['/', '/a/b?c=d#e', '/%2F%2Fevil.example']) assert.ok(isSafeRelativePath(ok), ok);
    for (const bad of [
      '',
      'a',
      '//evil.example',
      '/\\evil.example',
      'https://evil.example',
      '/\r\nx',
      '/\tx',
      'javascript:x',
    ]) {
      assert.ok(!isSafeRelativePath(bad), JSON.stringify(bad));
    }
  });
});
