import { getFips } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { readiness } from './readiness.js';
import type { BffServices } from './services.js';

/**
 * Liveness, readiness and metrics on the public listener. Both health endpoints report `fips_mode`
 * (seed 000). With an admin listener configured, `/metrics` is not served here (404) and `/readyz`
 * is a summary: key ids, ages and FIPS evidence are for operators, not for the internet.
 */
export async function observabilityPlugin(app: FastifyInstance, s: BffServices): Promise<void> {
  const admin = s.config.observability.admin.port !== undefined;
  app.get('/healthz', async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ status: 'ok', fips_mode: getFips() === 1 }),
  );

  app.get('/readyz', async (_request, reply) => {
    const report = await readiness(s);
    return reply
      .code(report.ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send(admin ? report.summary : { ...report.summary, fips: s.fips });
  });

  if (!admin) registerMetrics(app, s);
}

/** The admin listener (MS_BFF_ADMIN_HOST, MS_BFF_ADMIN_PORT): metrics and the detailed readiness report. */
export async function adminPlugin(app: FastifyInstance, s: BffServices): Promise<void> {
  app.get('/healthz', async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ status: 'ok', fips_mode: getFips() === 1 }),
  );
  app.get('/readyz', async (_request, reply) => {
    const report = await readiness(s);
    return reply
      .code(report.ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send(report.detail);
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
