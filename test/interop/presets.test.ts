/**
 * Presets against each IdP's published discovery document (docs/interop/discovery/): what the
 * capability checks shared by the startup check and `fapi-bff check` say with the preset applied, in the production profile. Prints each
 * IdP's support and checks the generated README table and docs/interop/presets.md against it.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  evaluatePreset,
  presetReports,
  readFixture,
  renderPresetsDoc,
  withIdpTable,
} from '../../src/cli/interop-matrix.js';
import { IDP_PRESETS } from '../../src/config/enums.js';

describe('presets against published discovery documents', () => {
  it('prints what each IdP supports; README table and docs/interop/presets.md match (npm run docs)', async (t) => {
    const reports = await presetReports();
    for (const r of reports) {
      const lines = r.features.map(
        (f) =>
          `  ${f.feature}: ${f.gaps.length ? `missing (${f.gaps.join('; ')})` : f.switches.length ? `yes, with ${f.switches.join(', ')}` : 'yes'}`,
      );
      t.diagnostic(`${r.preset}: ${r.fixture ? r.fixture.source : 'no published discovery document'}`);
      for (const line of lines) t.diagnostic(line);
    }
    assert.equal(readFileSync('docs/interop/presets.md', 'utf8'), renderPresetsDoc(reports));
    const readme = readFileSync('README.md', 'utf8');
    assert.equal(readme, withIdpTable(readme, reports));
  });

  it('every committed document names its source and whether it is reconstructed', () => {
    for (const preset of IDP_PRESETS) {
      const doc = readFixture(preset);
      if (!doc) continue;
      assert.match(doc._fixture.source, /https:\/\/|this repository/, preset);
      assert.equal(typeof doc._fixture.reconstructed, 'boolean', preset);
      assert.ok(doc._fixture.notes.length > 0, preset);
    }
  });

  it('oidc-provider: every feature, no switch', async () => {
    for (const f of await evaluatePreset('oidc-provider', readFixture('oidc-provider'))) {
      assert.deepEqual([f.feature, f.gaps, f.switches], [f.feature, [], []]);
    }
  });

  it('glewlwyd: the baseline passes with the preset, and only because of it', async () => {
    const doc = readFixture('glewlwyd');
    const [baseline] = await evaluatePreset('glewlwyd', doc);
    assert.deepEqual(baseline?.gaps, []);
    assert.ok(baseline?.switches.includes('MS_BFF_ASSUME_ISS_PARAMETER'));
    const [without] = await evaluatePreset('glewlwyd', doc, { applyPreset: false });
    assert.ok(
      without?.gaps.some((g) => g.startsWith('authorization_response_iss_parameter_supported')),
      JSON.stringify(without),
    );
  });

  it('okta (documented example): no PAR, no RFC 9207, RS256-only ID tokens, no private_key_jwt', async () => {
    const [baseline] = await evaluatePreset('okta', readFixture('okta'));
    const gaps = baseline?.gaps.join('\n') ?? '';
    for (const expected of [
      'pushed_authorization_request_endpoint',
      'authorization_response_iss_parameter_supported',
      'token_endpoint_auth_methods_supported must include private_key_jwt',
      'id_token_signing_alg_values_supported must include PS256',
    ]) {
      assert.ok(gaps.includes(expected), `${expected} in ${gaps}`);
    }
  });
});
