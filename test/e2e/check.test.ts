/**
 * `fapi-bff check` as an operator runs it: against oidc-provider with DPoP on (DPoP reported enabled
 * and the gate passing), with the report kept under test-results/ (the CI artifact), and in the
 * development setup right after `npm start` (the embedded IdP found through the running BFF).
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { startDevIdp } from '../../src/dev/idp.js';
import { registrationMetadata } from '../../src/oauth/client-metadata.js';
import { bffEnv, freePort, makeClientKey } from '../helpers/bff-harness.js';
import { type CheckReport, runToExit } from '../helpers/main-process.js';

describe('fapi-bff check', () => {
  it('reports DPoP enabled and available against oidc-provider, and keeps the report', async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    const idpPort = await freePort();
    const env = bffEnv({
      port,
      issuer: `http://127.0.0.1:${idpPort}`,
      clientId: 'bff-check',
      key,
      env: { MS_BFF_DPOP_ENABLED: 'true', MS_BFF_JAR_ENABLED: 'true', MS_BFF_JARM_ENABLED: 'true' },
    });
    const idp = await startDevIdp({
      port: idpPort,
      clients: [registrationMetadata(await loadConfig(env))],
      dpop: {},
    });
    try {
      mkdirSync('test-results', { recursive: true });
      const json = await runToExit(
        ['check', '--format', 'json', '--out', 'test-results/compliance.json'],
        env,
      );
      assert.equal(json.code, 0, json.stderr + json.stdout);
      const report = JSON.parse(json.stdout) as CheckReport;
      assert.equal(report.ok, true);
      const dpop = report.rows.find((r) => r.requirement === 'Sender constraint: DPoP');
      assert.equal(dpop?.status, 'enabled');
      assert.equal(report.rows.find((r) => r.requirement === 'JARM')?.status, 'enabled');
      assert.deepEqual(JSON.parse(readFileSync('test-results/compliance.json', 'utf8')), report);
      const md = await runToExit(['check', '--out', 'test-results/compliance.md'], env);
      assert.equal(md.code, 0, md.stderr);
      assert.match(md.stdout, /\| Sender constraint: DPoP \| .* \| enabled \|/);
    } finally {
      await idp.close();
    }
  });

  it('checks the embedded IdP of the development setup right after npm start', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['dist/src/main.js'], {
      env: { PATH: process.env.PATH ?? '', PORT: String(port), LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let up = false;
      for (let i = 0; i < 240 && !up; i++) {
        up = await fetch(`http://localhost:${port}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
        if (!up) await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(up, 'the development BFF started');
      const r = await runToExit(['check', '--format', 'json'], { PORT: String(port) });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stderr, /development setup: checking the embedded IdP/);
      const report = JSON.parse(r.stdout) as CheckReport;
      assert.equal(report.rows.find((x) => x.requirement === 'PAR')?.status, 'enabled');
    } finally {
      child.kill('SIGTERM');
    }
    const none = await runToExit(['check'], { PORT: String(await freePort()) });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /OIDC_ISSUER is not set and no development BFF answers/);
  });
});
