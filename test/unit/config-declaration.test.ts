import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Variable } from '../../src/config/kinds.js';
import { loadConfig } from '../../src/config/load.js';
import { readVariables } from '../../src/config/read.js';
import { frontendKey, VARIABLES, type VariableName } from '../../src/config/variables.js';
import { ConfigError } from '../../src/errors.js';
import { makeClientKey } from '../helpers/bff-harness.js';

const all = Object.entries(VARIABLES) as [VariableName, Variable<unknown, unknown>][];

describe('the variable declarations', () => {
  it('declare a documented, valid default for every variable that has one', () => {
    for (const [name, v] of all) {
      assert.ok(v.doc.length > 10, `${name} is documented`);
      if (v.default === undefined) continue;
      const text = Array.isArray(v.default) ? v.default.join(',') : String(v.default);
      const fails: string[] = [];
      const parsed = v.parse(text, (m) => fails.push(m));
      assert.deepEqual(fails, [], `${name}: its default passes its own validation`);
      assert.deepEqual(parsed, v.default, `${name}: its default round-trips`);
    }
  });

  it('fill every value from the environment, applying defaults and reporting each bad value', () => {
    const problems: string[] = [];
    const values = readVariables(
      {
        PORT: '99999',
        MS_BFF_DPOP_ALG: 'RS256',
        LOG_LEVEL: 'loud',
        MS_BFF_IDP_TIMEOUT_MS: '5',
        MS_BFF_DPOP_NONCE_SECRET: 'short',
        MS_BFF_CSRF_HEADER: 'X CSRF',
        REDIS_URL: 'http://x',
        MS_BFF_ALLOW_HTTP_HOSTS: ' A.internal ,, b.internal',
        MS_BFF_JAR_ENABLED: 'yes',
      },
      (variable, message) => problems.push(`${variable}: ${message}`),
    );
    assert.equal(values.PORT, 8080, 'a bad value falls back to the default so later rules still run');
    assert.equal(values.OIDC_SCOPES, 'openid profile email offline_access');
    assert.deepEqual(values.MS_BFF_ALLOW_HTTP_HOSTS, ['a.internal', 'b.internal']);
    assert.equal(values.MS_BFF_JAR_ENABLED, true);
    for (const name of [
      'PORT',
      'MS_BFF_DPOP_ALG',
      'LOG_LEVEL',
      'MS_BFF_IDP_TIMEOUT_MS',
      'MS_BFF_DPOP_NONCE_SECRET',
      'MS_BFF_CSRF_HEADER',
      'REDIS_URL',
    ]) {
      assert.ok(
        problems.some((p) => p.startsWith(`${name}: `)),
        `${name} is reported (${problems.join('; ')})`,
      );
    }
    assert.ok(
      !problems.some((p) => p.includes('http://x')),
      'a Redis URL is never echoed (it may hold a password)',
    );
  });

  it('reports problems of every variable in one ConfigError, including late ones', async () => {
    const key = await makeClientKey('ES256');
    try {
      await loadConfig({
        OIDC_ISSUER: 'https://idp.example.com',
        OIDC_CLIENT_ID: 'bff',
        BFF_JWT_SIGNING_KEY: JSON.stringify(key.privateJwk),
        MS_BFF_PUBLIC_URL: 'https://app.example.com',
        MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
        MS_BFF_IDP_TIMEOUT_MS: '5',
        MS_BFF_DISCOVERY_REFRESH: 'hourly',
        LOG_LEVEL: 'loud',
      });
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      const names = err.problems.map((p) => p.variable).sort();
      assert.deepEqual(names, ['LOG_LEVEL', 'MS_BFF_DISCOVERY_REFRESH', 'MS_BFF_IDP_TIMEOUT_MS']);
    }
  });

  it('name the per-frontend keys of the config file after the variables (camelCase, no prefix)', () => {
    assert.equal(frontendKey('OIDC_CLIENT_ID'), 'clientId');
    assert.equal(frontendKey('BFF_JWT_SIGNING_KEY'), 'jwtSigningKey');
    assert.equal(frontendKey('MS_BFF_COOKIE_NAME'), 'cookieName');
    assert.equal(frontendKey('MS_BFF_TOKEN_AUTH_METHOD'), 'tokenAuthMethod');
    assert.equal(frontendKey('OIDC_SCOPES'), 'scopes');
    const perFrontend = all.filter(([, v]) => v.frontend).map(([n]) => n);
    assert.ok(perFrontend.includes('OIDC_CLIENT_ID') && !perFrontend.includes('OIDC_ISSUER'));
  });
});
