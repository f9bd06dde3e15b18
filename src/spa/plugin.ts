import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SpaConfig, TlsConfig } from '../config/types.js';
import { FrontendOrigin } from './origin.js';
import { answerSpaRequest } from './serve.js';

export interface SpaOptions {
  /**
   * The SPA settings of the request's frontend, asked on every request (so a reloaded or per-host
   * configuration applies at once); undefined: this frontend serves no SPA (404).
   */
  readonly spaFor: (request: FastifyRequest) => SpaConfig | undefined;
  /** Path prefixes the BFF owns (`/auth`, `/api`, …): never a file, never the index.html fallback. */
  readonly reserved: readonly string[];
  /** Trust anchors for https frontend origins (MS_BFF_TLS_CA). */
  readonly tls: TlsConfig | undefined;
  /** Time to the origin's response headers, and body idle time. */
  readonly timeoutMs: number;
}

/**
 * Serves the SPA on every GET/HEAD path no BFF route takes: files of a directory through
 * @fastify/static (`reply.sendFile`, with its own canonical-path and dotfile refusals behind ours),
 * or a stream from a frontend origin. Each response carries the frontend's CSP and security headers.
 */
export async function registerSpa(app: FastifyInstance, options: SpaOptions): Promise<void> {
  // serve: false: no routes of its own, only reply.sendFile, given the directory on each call.
  await app.register(fastifyStatic, { serve: false });
  const origin = new FrontendOrigin(options.tls, options.timeoutMs);
  app.addHook('onClose', async () => origin.close());
  app.get('/*', async (request, reply) => {
    const spa = options.spaFor(request);
    if (!spa) return reply.callNotFound();
    const answer = await answerSpaRequest(
      spa,
      { method: request.method, url: request.url, accept: request.headers.accept },
      options.reserved,
    );
    if (answer.kind === 'not-found') return reply.callNotFound();
    securityHeaders(reply, spa);
    if (answer.kind === 'file') {
      reply.header('cache-control', answer.cacheControl);
      return reply.sendFile(answer.file, answer.dir, {
        // Ours is the Cache-Control above; the index is never revalidated, so it needs no validators.
        cacheControl: false,
        dotfiles: 'deny',
        index: false,
        ...(answer.cacheControl === 'no-store' ? { etag: false, lastModified: false } : {}),
      });
    }
    const fetched = await origin.fetch(
      answer.url,
      answer.base,
      request.method === 'HEAD' ? 'HEAD' : 'GET',
      request.headers,
      answer.index,
    );
    if (fetched.kind === 'not-found') return reply.callNotFound();
    if (fetched.kind === 'redirect')
      return reply.header('cache-control', 'no-store').redirect(fetched.location, fetched.status);
    return reply.code(fetched.status).headers(fetched.headers).send(fetched.body);
  });
}

function securityHeaders(reply: FastifyReply, spa: SpaConfig): void {
  for (const [name, value] of spa.headers) reply.header(name, value);
}
