import { getFips } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { BffServices } from './services.js';

/** Liveness, readiness and metrics. Both health endpoints report `fips_mode` (seed 000). */
export async function observabilityPlugin(app: FastifyInstance, s: BffServices): Promise<void> {
  const fipsMode = () => getFips() === 1;

  app.get('/healthz', async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ status: 'ok', fips_mode: fipsMode() }),
  );

  app.get('/readyz', async (_request, reply) => {
    let storeOk = true;
    try {
      await s.store.ping();
    } catch {
      storeOk = false;
    }
    const metadataAgeSec = Math.round(s.idp.metadataAgeMs() / 1000);
    const ready = storeOk;
    return reply
      .code(ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send({
        status: ready ? 'ready' : 'not_ready',
        fips_mode: fipsMode(),
        fips: s.fips,
        checks: {
          store: { ok: storeOk, kind: s.store.kind },
          idp: { ok: true, issuer: s.idp.metadata.issuer, metadata_age_seconds: metadataAgeSec },
        },
      });
  });

  app.get('/metrics', async (_request, reply) =>
    reply
      .header('content-type', s.metrics.contentType())
      .header('cache-control', 'no-store')
      .send(await s.metrics.render()),
  );
}
