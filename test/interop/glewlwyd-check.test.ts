/**
 * `fapi-bff check` against a live Glewlwyd 2.7, as an operator runs it: with MS_BFF_IDP_PRESET=glewlwyd
 * the gate passes for PAR, DPoP, JAR and JARM; without the preset it fails on RFC 9207 (Glewlwyd
 * sends iss but does not advertise it).
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { bffEnv, freePort, makeClientKey } from '../helpers/bff-harness.js';
import { type Glewlwyd, glewlwydUnavailable, startGlewlwyd } from '../helpers/glewlwyd.js';
import { type CheckReport, runToExit } from '../helpers/main-process.js';

describe('fapi-bff check against Glewlwyd', { skip: glewlwydUnavailable() ?? false }, () => {
  let glw: Glewlwyd;
  let env: Record<string, string>;
  before(async () => {
    glw = await startGlewlwyd();
    env = bffEnv({
      port: await freePort(),
      issuer: glw.issuer,
      clientId: 'bffcheck',
      key: await makeClientKey('ES256'),
      env: { MS_BFF_DPOP_ENABLED: 'true', MS_BFF_JAR_ENABLED: 'true', MS_BFF_JARM_ENABLED: 'true' },
    });
  });
  after(async () => {
    await glw?.close();
  });

  it('passes with the preset: iss assumed (still required), DPoP, JAR and JARM enabled', async (t) => {
    const r = await runToExit(['check', '--format', 'json'], { ...env, MS_BFF_IDP_PRESET: 'glewlwyd' });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const report = JSON.parse(r.stdout) as CheckReport;
    for (const row of report.rows) t.diagnostic(`${row.requirement}: ${row.status}`);
    assert.equal(report.ok, true);
    const status = (name: string) => report.rows.find((row) => row.requirement === name)?.status;
    for (const name of [
      'PAR',
      'RFC 9207 iss',
      'Sender constraint: DPoP',
      'JAR (signed request objects)',
      'JARM',
    ]) {
      assert.equal(status(name), 'enabled', name);
    }
  });

  it('fails without the preset, naming RFC 9207', async () => {
    const r = await runToExit(['check', '--format', 'json'], env);
    assert.equal(r.code, 1, r.stderr + r.stdout);
    const report = JSON.parse(r.stdout) as CheckReport;
    assert.equal(report.ok, false);
    const iss = report.rows.find((row) => row.requirement === 'RFC 9207 iss');
    assert.equal(iss?.status, 'missing');
  });
});
