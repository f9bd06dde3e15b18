import type { FastifyInstance } from 'fastify';
import { BffError } from '../errors.js';
import { currentSession } from '../session/current.js';
import { basePathOf, type BffServices, servicesFor } from '../server/services.js';

/** GET /auth/session — who is signed in: claims, expiry and the logout URL. Never a token. */
export function registerSession(app: FastifyInstance, root: BffServices): void {
  // Inside the embeddable plugin every path carries its prefix; the standalone app has none.
  app.get('/auth/session', async (request, reply) => {
    const s = servicesFor(request, root);
    const logoutPath = `${app.prefix}${basePathOf(request)}/auth/logout`;
    const session = await currentSession(s, request);
    if (!session) throw new BffError('BFF_SESSION_REQUIRED');
    const idleEnds = Date.now() + s.config.session.idleTimeoutSec * 1000;
    return reply.header('cache-control', 'no-store').send({
      claims: session.data.claims,
      expiresAt: new Date(Math.min(idleEnds, session.data.absoluteExpiresAt)).toISOString(),
      absoluteExpiresAt: new Date(session.data.absoluteExpiresAt).toISOString(),
      logoutUrl: `${logoutPath}?sid=${encodeURIComponent(session.data.sid)}`,
    });
  });
}
