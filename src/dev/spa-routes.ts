import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** The demo SPA's CSP: same-origin scripts, styles and fetches only; nothing inline. */
const SPA_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Serve the development demo SPA from demo/spa (development mode only). */
export function spaRoutes(dir: URL): (app: FastifyInstance) => void {
  return (app) => {
    for (const [path, { file, type }] of Object.entries(FILES)) {
      app.get(path, async (_request, reply) =>
        reply
          .type(type)
          .header('content-security-policy', SPA_CSP)
          .header('cache-control', 'no-cache')
          .send(await readFile(new URL(file, dir))),
      );
    }
  };
}
