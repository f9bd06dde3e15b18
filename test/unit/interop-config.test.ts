/**
 * Interop switches and presets: off by default, loud when on, refused in production when they weaken
 * the profile unless acknowledged by name; a preset fills in only what the operator left unset.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { loadConfig } from '../../src/config/load.js';
import { PRESETS } from '../../src/config/presets.js';
import { ConfigError } from '../../src/errors.js';
import { describeIdpFailure } from '../../src/oauth/diagnostics.js';
import { minimalEnv } from '../helpers/bff-harness.js';

const env = minimalEnv;

async function refused(vars: Record<string, string>): Promise<string[]> {
  try {
    await loadConfig(vars);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => p.variable);
  }
  return [];
}

const WEAKENING = [
  'MS_BFF_CLIENT_ASSERTION_AUD',
  'MS_BFF_JARM_MAX_LIFETIME_SECONDS',
  'MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP',
];

describe('interop switches', () => {
  it('are off by default: FAPI 2.0 behaviour, nothing active, no warning', async () => {
    const config = await loadConfig(await env());
    assert.deepEqual(config.interop, {
      preset: undefined,
      clientAssertionAud: 'issuer',
      assumeIssParameter: false,
      jarmMaxLifetimeSec: 600,
      logoutTokenRequireExp: true,
      active: [],
    });
    assert.equal(
      config.warnings.some((w) => w.includes('INTEROP')),
      false,
    );
  });

  it('the glewlwyd preset is refused in production until each weakening switch is acknowledged', async () => {
    assert.deepEqual((await refused(await env({ MS_BFF_IDP_PRESET: 'glewlwyd' }))).sort(), WEAKENING);
    const partial = await env({
      MS_BFF_IDP_PRESET: 'glewlwyd',
      MS_BFF_ACKNOWLEDGE_WEAKENED: 'MS_BFF_CLIENT_ASSERTION_AUD',
    });
    assert.deepEqual((await refused(partial)).sort(), WEAKENING.slice(1));
    const config = await loadConfig(
      await env({ MS_BFF_IDP_PRESET: 'glewlwyd', MS_BFF_ACKNOWLEDGE_WEAKENED: WEAKENING.join(',') }),
    );
    assert.equal(config.interop.preset, 'glewlwyd');
    assert.equal(config.interop.clientAssertionAud, 'endpoint');
    assert.equal(config.interop.assumeIssParameter, true);
    assert.equal(config.interop.jarmMaxLifetimeSec, 3600);
    assert.equal(config.interop.logoutTokenRequireExp, false);
    // Each switch that is on is logged loudly, naming the preset.
    for (const name of [...WEAKENING, 'MS_BFF_ASSUME_ISS_PARAMETER']) {
      assert.ok(
        config.warnings.some((w) => w.startsWith(`INTEROP ${name}`) && w.includes('glewlwyd')),
        `${name} warned: ${config.warnings.join('\n')}`,
      );
    }
  });

  it('MS_BFF_ASSUME_ISS_PARAMETER alone weakens nothing: allowed in production, still logged', async () => {
    const config = await loadConfig(await env({ MS_BFF_ASSUME_ISS_PARAMETER: 'true' }));
    assert.deepEqual(config.interop.active, ['MS_BFF_ASSUME_ISS_PARAMETER']);
    assert.ok(config.warnings.some((w) => w.startsWith('INTEROP MS_BFF_ASSUME_ISS_PARAMETER')));
  });

  it('a JARM lifetime up to 600 s needs no acknowledgement; longer does', async () => {
    assert.deepEqual(await refused(await env({ MS_BFF_JARM_MAX_LIFETIME_SECONDS: '300' })), []);
    assert.deepEqual(await refused(await env({ MS_BFF_JARM_MAX_LIFETIME_SECONDS: '601' })), [
      'MS_BFF_JARM_MAX_LIFETIME_SECONDS',
    ]);
    assert.deepEqual(await refused(await env({ MS_BFF_JARM_MAX_LIFETIME_SECONDS: '5' })), [
      'MS_BFF_JARM_MAX_LIFETIME_SECONDS',
    ]);
  });

  it('development allows weakening switches with warnings only', async () => {
    const config = await loadConfig(
      await env({ MS_BFF_PROFILE: 'development', MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP: 'false' }),
    );
    assert.deepEqual(config.interop.active, ['MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP']);
  });

  it('what the operator sets wins over the preset', async () => {
    const config = await loadConfig(
      await env({
        MS_BFF_PROFILE: 'development',
        MS_BFF_IDP_PRESET: 'glewlwyd',
        MS_BFF_CLIENT_ASSERTION_AUD: 'issuer',
        MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP: 'true',
      }),
    );
    assert.equal(config.interop.clientAssertionAud, 'issuer');
    assert.equal(config.interop.logoutTokenRequireExp, true);
    assert.equal(config.interop.jarmMaxLifetimeSec, 3600, 'the rest still comes from the preset');
  });

  it('an acknowledgement of nothing is warned about; an unknown preset is refused', async () => {
    const config = await loadConfig(
      await env({ MS_BFF_ACKNOWLEDGE_WEAKENED: 'MS_BFF_CLIENT_ASSERTION_AUD' }),
    );
    assert.ok(config.warnings.some((w) => w.includes('weakens nothing here')));
    assert.deepEqual(await refused(await env({ MS_BFF_IDP_PRESET: 'gluu' })), ['MS_BFF_IDP_PRESET']);
  });

  it('every preset sets only interop switches and FAPI 2.0 algs, each with a documented reason', () => {
    const switches = new Set([...WEAKENING, 'MS_BFF_ASSUME_ISS_PARAMETER']);
    // A default a preset may pick: an alg FAPI 2.0 allows (Security Profile §5.4), never a weaker one.
    const fapiDefaults: Record<string, readonly string[]> = {
      BFF_JWT_SIGNING_ALG: ['PS256', 'ES256', 'EdDSA'],
    };
    for (const [name, preset] of Object.entries(PRESETS)) {
      for (const [variable, value] of Object.entries(preset.settings)) {
        assert.ok(
          switches.has(variable) || fapiDefaults[variable]?.includes(value),
          `${name} sets ${variable}=${value}`,
        );
        assert.match(preset.reasons[variable] ?? '', /https:\/\//, `${name}: ${variable} cites a source`);
      }
    }
  });
});

describe('IdP failure diagnostics', () => {
  const ctx = {
    endpoint: 'par',
    url: 'https://idp.example.com/par',
    authMethod: 'private_key_jwt',
    clientAssertionAud: 'issuer' as const,
    dpop: false,
  };

  it('an empty 401 at PAR with private_key_jwt: status, library code and the audience hint', () => {
    const err = Object.assign(new oidc.ClientError('unexpected response content-type'), {
      code: 'OAUTH_RESPONSE_IS_NOT_JSON',
      cause: new Response(null, { status: 401 }),
    });
    const failure = describeIdpFailure(err, ctx);
    assert.equal(failure.status, 401);
    assert.equal(failure.library_code, 'OAUTH_RESPONSE_IS_NOT_JSON');
    assert.equal(failure.url, 'https://idp.example.com/par');
    assert.match(String(failure.hint), /MS_BFF_CLIENT_ASSERTION_AUD/);
  });

  it('an OAuth error body: error and error_description (one line, bounded), no hint for the unknown', () => {
    const response = new Response('{}', { status: 400 });
    const err = new oidc.ResponseBodyError('server responded with an error', {
      cause: { error: 'invalid_target', error_description: `bad\nresource ${'x'.repeat(400)}` },
      response,
    });
    const failure = describeIdpFailure(err, { ...ctx, endpoint: 'token' });
    assert.equal(failure.status, 400);
    assert.equal(failure.error, 'invalid_target');
    assert.ok(failure.error_description?.startsWith('bad resource'));
    assert.ok((failure.error_description?.length ?? 0) <= 301);
    assert.equal(failure.hint, undefined);
  });

  it('client_secret_basic refused: the Basic encoding hint', () => {
    const err = new oidc.ResponseBodyError('server responded with an error', {
      cause: { error: 'invalid_client' },
      response: new Response('{}', { status: 401 }),
    });
    const failure = describeIdpFailure(err, { ...ctx, endpoint: 'token', authMethod: 'client_secret_basic' });
    assert.match(String(failure.hint), /URL-decode/);
  });
});
