import type { FastifyInstance } from 'fastify';

/**
 * Development setup only: a browser that opens the BFF under another host name than the public URL
 * (http://127.0.0.1:8080 instead of http://localhost:8080) would start a login whose binding cookie
 * lives on one host while the IdP sends the user back to the redirect URI on the other, and the
 * callback would fail as "not this browser". Cookies are per host (RFC 6265 §5.3 step 6), so the
 * only fix is to move the browser to the public URL before anything is set: GET and HEAD requests on
 * another host are redirected there, path and query kept. Other methods are left to the CSRF checks.
 */
export function redirectToPublicUrl(publicUrl: URL): (app: FastifyInstance) => void {
  return (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.method !== 'GET' && request.method !== 'HEAD') return;
      if (request.headers.host === publicUrl.host) return;
      // Only the path and query are taken from the request; the origin is ours (no open redirect).
      const target = new URL(publicUrl.origin);
      const q = request.url.indexOf('?');
      target.pathname = q === -1 ? request.url : request.url.slice(0, q);
      if (q !== -1) target.search = request.url.slice(q);
      return reply.code(302).header('cache-control', 'no-store').header('location', target.href).send();
    });
  };
}
