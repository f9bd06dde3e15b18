import { getFips } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { BffServices } from './services.js';
import { evaluateReadiness, type ReadinessReport } from '../observability/readiness.js';
import { adminReadinessDetail } from './readiness.js';

/**
 * Liveness, readiness and metrics. Both health endpoints report `fips_mode` (seed 000). With an
 * admin listener (MS_BFF_ADMIN_PORT), `/metrics` is not served here (404) and `/readyz` is a summary:
 * FIPS evidence, key ids and ages are for operators, on the admin listener.
 */
export async function observabilityPlugin(app: FastifyInstance, s: BffServices): Promise<void> {
  const fipsMode = () => getFips() === 1;
  const admin = s.config.observability.admin.port !== undefined;

  app.get('/healthz', async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ status: 'ok', fips_mode: fipsMode() }),
  );

  app.get('/readyz', async (_request, reply) => {
    const report = await readinessReport(s);
    return reply
      .code(report.ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send({
        status: report.ready ? 'ready' : 'not_ready',
        fips_mode: fipsMode(),
        ...(admin ? {} : { fips: s.fips }),
        checks: report.checks,
      });
  });

  if (!admin) registerMetrics(app, s);
}

/** The admin listener (MS_BFF_ADMIN_HOST, MS_BFF_ADMIN_PORT): metrics and the detailed readiness report. */
export async function adminPlugin(app: FastifyInstance, s: BffServices): Promise<void> {
  app.get('/healthz', async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ status: 'ok', fips_mode: getFips() === 1 }),
  );
  app.get('/readyz', async (_request, reply) => {
    const report = await readinessReport(s);
    return reply
      .code(report.ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send({
        status: report.ready ? 'ready' : 'not_ready',
        fips_mode: getFips() === 1,
        checks: report.checks,
        ...adminReadinessDetail(s),
      });
  });
  registerMetrics(app, s);
}

function registerMetrics(app: FastifyInstance, s: BffServices): void {
  app.get('/metrics', async (_request, reply) =>
    reply
      .header('content-type', s.metrics.contentType())
      .header('cache-control', 'no-store')
      .send(await s.metrics.render()),
  );
}

/** How long the IdP may go without any call before /readyz makes one (a metadata refresh). */
const READY_PROBE_QUIET_MS = 15_000;

/**
 * The readiness judgement of this instance (evaluateReadiness holds the policy). Pings the store; if
 * the IdP has not been called for a while, starts a metadata refresh in the background so the next
 * report reflects an outage even without user traffic (the probe never delays this answer).
 */
export async function readinessReport(s: BffServices): Promise<ReadinessReport> {
  let storeOk = true;
  try {
    await s.store.ping();
  } catch {
    storeOk = false;
  }
  s.idp.probeIfQuiet(READY_PROBE_QUIET_MS);
  return evaluateReadiness({
    now: Date.now(),
    store: { kind: s.store.kind, ok: storeOk },
    idp: { issuer: s.idp.metadata.issuer, health: s.idp.health.snapshot() },
    maxSilenceSec: 3 * s.config.oidc.discoveryRefreshSec,
    requireIdp: s.config.readyRequiresIdp,
  });
}
