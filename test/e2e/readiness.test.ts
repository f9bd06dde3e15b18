/**
 * /readyz tells the truth about the IdP: during an outage (the IdP process gone) the instance is not
 * ready and says why; when the IdP answers again it is ready again. The policy itself
 * (observability/readiness.ts) is checked on its own below.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { evaluateReadiness } from '../../src/observability/readiness.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';

interface Ready {
  status: string;
  checks: { store: { ok: boolean }; idp: Record<string, unknown> };
}

async function readyz(bff: RunningBff): Promise<{ code: number; body: Ready }> {
  const r = await fetch(`${bff.url}/readyz`, { signal: AbortSignal.timeout(10_000) });
  return { code: r.status, body: (await r.json()) as Ready };
}

describe('/readyz during an IdP outage', { timeout: 60_000 }, () => {
  let idp: DevIdp;
  let idpPort: number;
  let clients: Record<string, unknown>[];
  let strict: RunningBff;
  let lenient: RunningBff;

  before(async () => {
    idpPort = await freePort();
    const [p1, p2] = [await freePort(), await freePort()];
    const [k1, k2] = [await makeClientKey(), await makeClientKey()];
    clients = [
      clientMetadata('ready-strict', `http://127.0.0.1:${p1}`, k1),
      clientMetadata('ready-lenient', `http://127.0.0.1:${p2}`, k2),
    ];
    idp = await startDevIdp({ port: idpPort, clients });
    const common = { issuer: idp.issuer, env: { MS_BFF_IDP_TIMEOUT_MS: '2000' } };
    strict = await startBff({ ...common, port: p1, clientId: 'ready-strict', key: k1 });
    lenient = await startBff({
      ...common,
      port: p2,
      clientId: 'ready-lenient',
      key: k2,
      env: { ...common.env, MS_BFF_READY_REQUIRES_IDP: 'false' },
    });
  });
  after(async () => {
    await strict?.close();
    await lenient?.close();
    await idp?.close();
  });

  it('is ready while the IdP answers, with the age of the last metadata refresh', async () => {
    const { code, body } = await readyz(strict);
    assert.equal(code, 200);
    assert.equal(body.status, 'ready');
    assert.equal(body.checks.idp.ok, true);
    assert.equal(body.checks.idp.last_call_failed, false);
    assert.equal(typeof body.checks.idp.metadata_age_seconds, 'number');
  });

  it('says not ready once a call to the IdP fails, and why', async () => {
    await idp.close();
    // A login needs PAR: the IdP is gone, so the call fails.
    const login = await fetch(`${strict.url}/auth/login`, { redirect: 'manual' });
    assert.equal(login.status, 503);
    const { code, body } = await readyz(strict);
    assert.equal(code, 503);
    assert.equal(body.status, 'not_ready');
    assert.equal(body.checks.store.ok, true);
    assert.equal(body.checks.idp.ok, false);
    assert.equal(body.checks.idp.last_call_failed, true);
    assert.equal(body.checks.idp.last_call_source, 'par');
    assert.equal(body.checks.idp.reason, 'last_call_failed');
  });

  it('notices the outage without user traffic: a failed metadata refresh', async () => {
    assert.equal(await lenient.services.idp.refreshMetadata(), false);
    const { code, body } = await readyz(lenient);
    assert.equal(body.checks.idp.ok, false);
    assert.equal(body.checks.idp.last_call_source, 'metadata');
    // MS_BFF_READY_REQUIRES_IDP=false: reported, but the instance stays in rotation.
    assert.equal(code, 200);
    assert.equal(body.checks.idp.required, false);
  });

  it('is ready again when the IdP answers again', async () => {
    idp = await startDevIdp({ port: idpPort, clients });
    assert.equal(await strict.services.idp.refreshMetadata(), true);
    const { code, body } = await readyz(strict);
    assert.equal(code, 200);
    assert.equal(body.checks.idp.ok, true);
    assert.equal(body.checks.idp.metadata_age_seconds, 0);
  });
});

describe('readiness policy', () => {
  const base = {
    now: 1_000_000,
    store: { kind: 'memory', ok: true },
    maxSilenceSec: 60,
    requireIdp: true,
  };
  const health = (over: object = {}) => ({
    metadataRefreshedAt: 990_000,
    jwksRefreshedAt: undefined,
    lastCall: { source: 'token', ok: true, at: 995_000 },
    lastSuccessAt: 995_000,
    ...over,
  });

  it('an IdP answer, even an OAuth error, keeps it ready', () => {
    assert.equal(evaluateReadiness({ ...base, idp: { issuer: 'i', health: health() } }).ready, true);
  });
  it('nothing reached the IdP for longer than the allowed silence: not ready', () => {
    const r = evaluateReadiness({
      ...base,
      idp: { issuer: 'i', health: health({ lastSuccessAt: 900_000, lastCall: undefined }) },
    });
    assert.equal(r.ready, false);
    assert.equal(r.checks.idp.reason, 'silent_too_long');
  });
  it('a store that does not answer: not ready, whatever the IdP', () => {
    const r = evaluateReadiness({
      ...base,
      store: { kind: 'redis', ok: false },
      idp: { issuer: 'i', health: health() },
    });
    assert.equal(r.ready, false);
  });
});
