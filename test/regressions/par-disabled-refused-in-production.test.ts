/**
 * Prevents: a production BFF running without Pushed Authorization Requests.
 *
 * Failure it guards against: `MS_BFF_PAR_ENABLED=false` with `MS_BFF_PROFILE=production` only logged a
 * warning and the BFF sent every authorization parameter through the browser, although FAPI 2.0
 * Security Profile §5.3.2.2 (https://openid.net/specs/fapi-security-profile-2_0-final.html) says
 * clients shall use PAR (RFC 9126). Development keeps the warning (some test IdPs lack PAR).
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { minimalEnv } from '../helpers/bff-harness.js';

const env = (profile: 'production' | 'development') =>
  minimalEnv({ MS_BFF_PROFILE: profile, MS_BFF_ROUTES: '{}', MS_BFF_PAR_ENABLED: 'false' });

describe('regression: MS_BFF_PAR_ENABLED=false in production', () => {
  it('is refused with a problem naming the variable', async () => {
    const err = await loadConfig(await env('production')).then(
      () => assert.fail('production started without PAR'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ConfigError, String(err));
    const problem = err.problems.find((p) => p.variable === 'MS_BFF_PAR_ENABLED');
    assert.ok(problem, `problems: ${JSON.stringify(err.problems)}`);
    assert.match(problem.message, /refused in production/);
  });

  it('is allowed in development, with a warning', async () => {
    const config = await loadConfig(await env('development'));
    assert.equal(config.oidc.parEnabled, false);
    assert.ok(config.warnings.some((w) => w.includes('MS_BFF_PAR_ENABLED=false')));
  });
});
