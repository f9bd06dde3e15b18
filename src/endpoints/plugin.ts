import type { FastifyInstance } from 'fastify';
import { type BffServices, servicesFor } from '../server/services.js';
import { registerBackchannelLogout } from './backchannel-logout.js';
import { registerCallback } from './callback.js';
import { registerInspect } from './inspect.js';
import { registerLogin } from './login.js';
import { registerLogout } from './logout.js';
import { registerSession } from './session.js';

/** The /auth/** endpoints and our JWKS. Thin: parse, call the domain, respond. */
export async function endpointsPlugin(app: FastifyInstance, s: BffServices): Promise<void> {
  // form_post callbacks (RFC 6749 §4.1.2 with response_mode=form_post): kept as a string, parsed with URLSearchParams.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 64 * 1024 },
    (_r, body, done) => done(null, body),
  );
  registerLogin(app, s);
  registerCallback(app, s);
  registerSession(app, s);
  registerLogout(app, s);
  registerBackchannelLogout(app, s);
  // The session inspector shows protocol facts a production deployment has no reason to publish.
  if (s.config.profile === 'development') registerInspect(app, s);

  // Every key of our sets (next, active, retiring), signing and JARM decryption (use: enc). IdPs
  // cache this document: max-age stays below the pre-publish window (seed 002 §5), so a key that is
  // about to sign has been seen by every IdP that honours it.
  const maxAge = Math.min(300, Math.floor(s.config.keys.prepublishSec / 2));
  // The keys of the request's frontend (its own client's signing and decryption keys).
  app.get('/.well-known/jwks.json', async (request, reply) =>
    reply
      .header('cache-control', `public, max-age=${maxAge}`)
      .send({ keys: servicesFor(request, s).idp.keys.publicJwks() }),
  );
}
