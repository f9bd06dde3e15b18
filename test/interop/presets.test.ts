/**
 * Presets against each IdP's published discovery document (docs/interop/discovery/): what `fapi-bff
 * check` says with the preset applied, in the production profile, the document served from a loopback
 * issuer. Prints each IdP's support and checks the generated README table and docs/interop/presets.md
 * against it.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  evaluatePreset,
  presetReports,
  readFixture,
  renderPresetsDoc,
  servedDocument,
  withIdpTable,
} from '../../src/cli/interop-matrix.js';
import { IDP_PRESETS } from '../../src/config/enums.js';
import { loadConfig } from '../../src/config/load.js';
import { PRESETS } from '../../src/config/presets.js';

const gapsOf = async (...args: Parameters<typeof evaluatePreset>) => {
  const [baseline, ...rest] = await evaluatePreset(...args);
  return { baseline: baseline?.gaps.join('\n') ?? '', features: [baseline, ...rest] };
};

describe('presets against published discovery documents', () => {
  it('prints what each IdP supports; README table and docs/interop/presets.md match (npm run docs)', async (t) => {
    const reports = await presetReports();
    for (const r of reports) {
      t.diagnostic(
        `${r.preset}: ${r.fixture ? `${r.fixture.origin}: ${r.fixture.source}` : 'no published discovery document'}`,
      );
      for (const f of r.features)
        t.diagnostic(
          `  ${f.feature}: ${f.gaps.length ? `missing (${f.gaps.join('; ')})` : f.switches.length ? `yes, with ${f.switches.join(', ')}` : 'yes'}`,
        );
    }
    assert.equal(readFileSync('docs/interop/presets.md', 'utf8'), renderPresetsDoc(reports));
    const readme = readFileSync('README.md', 'utf8');
    assert.equal(readme, withIdpTable(readme, reports));
  });

  it('every preset has a committed document naming its source, origin and whether it is partial', () => {
    for (const preset of IDP_PRESETS) {
      const doc = readFixture(preset);
      assert.ok(doc, `${preset}: no document in docs/interop/discovery`);
      assert.match(doc._fixture.source, /https:\/\/|this repository/, preset);
      assert.equal(typeof doc._fixture.origin, 'string', preset);
      assert.equal(typeof doc._fixture.reconstructed, 'boolean', preset);
      assert.ok(doc._fixture.notes.length > 0, preset);
    }
  });

  it('every setting a preset makes names its public source', () => {
    for (const [name, preset] of Object.entries(PRESETS)) {
      for (const variable of Object.keys(preset.settings))
        assert.match(preset.reasons[variable] ?? '', /https:\/\//, `${name}: ${variable}`);
      for (const note of preset.notes) assert.match(note, /https:\/\/|§/, `${name}: ${note}`);
    }
  });

  it('the served document moves every URL to the loopback issuer and keeps every other member', () => {
    const origin = 'http://127.0.0.1:9';
    for (const preset of IDP_PRESETS) {
      const doc = readFixture(preset);
      if (!doc) continue;
      const served = servedDocument(doc, origin, `/${preset}`);
      const urls: string[] = [];
      const walk = (a: unknown, b: unknown, path: string): void => {
        if (typeof a === 'string' && /^https?:\/\//.test(a)) {
          urls.push(String(b));
          assert.equal(String(b), `${origin}${new URL(a).pathname}${new URL(a).search}`, path);
        } else if (a !== null && typeof a === 'object') {
          assert.deepEqual(Object.keys(a), Object.keys(b as object), path);
          for (const [k, v] of Object.entries(a)) walk(v, (b as Record<string, unknown>)[k], `${path}.${k}`);
        } else assert.deepEqual(b, a, path);
      };
      const { _fixture, ...published } = doc;
      assert.ok(_fixture);
      for (const [k, v] of Object.entries(published)) walk(v, served[k], `${preset}.${k}`);
      assert.ok(String(served.issuer).startsWith(origin), preset);
      assert.ok(
        urls.every((u) => u.startsWith(`${origin}/`)),
        preset,
      );
    }
  });

  it('the check reads the served document: a member taken out of it shows up as a gap', async () => {
    const doc = readFixture('keycloak');
    assert.ok(doc);
    const { pushed_authorization_request_endpoint: _par, ...withoutPar } = doc;
    assert.ok(_par);
    const { baseline } = await gapsOf('keycloak', withoutPar);
    assert.match(baseline, /pushed_authorization_request_endpoint/);
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

  it('keycloak: baseline, DPoP, JAR and JARM with no switch at all', async () => {
    assert.deepEqual(PRESETS.keycloak.settings, {});
    for (const f of await evaluatePreset('keycloak', readFixture('keycloak'))) {
      assert.deepEqual([f.feature, f.gaps, f.switches], [f.feature, [], []]);
    }
  });

  it('okta (documented example): no PAR, no RFC 9207, RS256-only ID tokens, no private_key_jwt', async () => {
    const { baseline } = await gapsOf('okta', readFixture('okta'));
    for (const expected of [
      'pushed_authorization_request_endpoint',
      'authorization_response_iss_parameter_supported',
      'token_endpoint_auth_methods_supported must include private_key_jwt',
      'id_token_signing_alg_values_supported must include PS256',
    ]) {
      assert.ok(baseline.includes(expected), `${expected} in ${baseline}`);
    }
  });

  it('auth0: the preset signs client assertions with PS256 (ES256 is not accepted); PAR and RFC 9207 stay missing', async () => {
    const doc = readFixture('auth0');
    const withPreset = await gapsOf('auth0', doc);
    assert.doesNotMatch(withPreset.baseline, /token_endpoint_auth_signing_alg_values_supported/);
    assert.match(withPreset.baseline, /pushed_authorization_request_endpoint/);
    assert.match(withPreset.baseline, /authorization_response_iss_parameter_supported/);
    const without = await gapsOf('auth0', doc, { applyPreset: false });
    assert.match(without.baseline, /token_endpoint_auth_signing_alg_values_supported must include ES256/);
  });

  it('auth0: an EC signing key is refused at startup under the preset, not at the first login', async () => {
    const { generateKeyPair, exportJWK } = await import('jose');
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    await assert.rejects(
      loadConfig({
        OIDC_ISSUER: 'https://example.us.auth0.com/',
        OIDC_CLIENT_ID: 'bff',
        BFF_JWT_SIGNING_KEY: JSON.stringify(await exportJWK(privateKey)),
        MS_BFF_IDP_PRESET: 'auth0',
      }),
      /BFF_JWT_SIGNING_KEY/,
    );
  });

  it('curity (partial documentation): RFC 9207 and PAR are not among its gaps; what could not be read is', async () => {
    const { baseline } = await gapsOf('curity', readFixture('curity'));
    assert.doesNotMatch(
      baseline,
      /authorization_response_iss_parameter_supported|pushed_authorization_request_endpoint/,
    );
    assert.match(baseline, /token_endpoint/);
  });

  it('entra (recorded live document): RS256-only ID tokens, no PAR, no RFC 9207; the preset hides none of it', async () => {
    assert.deepEqual(PRESETS.entra.settings, {});
    const { baseline } = await gapsOf('entra', readFixture('entra'));
    for (const expected of [
      'id_token_signing_alg_values_supported must include PS256',
      'pushed_authorization_request_endpoint',
      'authorization_response_iss_parameter_supported',
    ]) {
      assert.ok(baseline.includes(expected), `${expected} in ${baseline}`);
    }
  });
});
