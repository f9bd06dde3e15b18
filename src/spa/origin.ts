import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher, errors as undiciErrors } from 'undici';
import { isSafeRelativePath } from '../config/paths.js';
import type { TlsConfig } from '../config/types.js';
import { BffError } from '../errors.js';
import { CACHE_NONE } from './paths.js';

/**
 * What the browser may ask of a frontend origin: content negotiation, conditional and range
 * requests. Never its cookies (the session cookie is ours alone), credentials or forwarding claims.
 */
const REQUEST_HEADERS = [
  'accept',
  'accept-encoding',
  'accept-language',
  'if-none-match',
  'if-modified-since',
  'if-range',
  'range',
  'user-agent',
];

/**
 * What the browser may see of the origin's answer: the representation and its validators. Not its
 * cookies, CSP, CORS grants or framing policy: the BFF's origin is the one the browser trusts, and
 * its headers are the frontend's configured ones (rules/spa.ts).
 */
const RESPONSE_HEADERS = [
  'content-type',
  'content-length',
  'content-encoding',
  'content-range',
  'content-language',
  'accept-ranges',
  'etag',
  'last-modified',
  'cache-control',
  'expires',
  'vary',
];

/** Statuses passed on as they are; 403, 404 and 410 become the BFF's 404, any other an error. */
const PASSED = new Set([200, 203, 204, 206, 304, 416]);
const MISSING = new Set([403, 404, 410]);

export type OriginAnswer =
  | { readonly kind: 'not-found' }
  | { readonly kind: 'redirect'; readonly status: number; readonly location: string }
  | {
      readonly kind: 'response';
      readonly status: number;
      readonly headers: Record<string, string>;
      readonly body: Readable;
    };

/**
 * Fetches the SPA from a frontend origin (a CDN or a development server such as Vite) and streams it
 * through: undici, which the BFF already uses for its upstreams, one pooled Agent for every frontend
 * origin. Only GET and HEAD reach here.
 */
export class FrontendOrigin {
  private readonly agent: Dispatcher;

  constructor(
    tls: TlsConfig | undefined,
    private readonly timeoutMs: number,
  ) {
    this.agent = new Agent({
      keepAliveTimeout: 10_000,
      connections: 64,
      connect: { ...(tls?.ca ? { ca: tls.ca } : {}), minVersion: 'TLSv1.2' },
    });
  }

  /**
   * `base`: the frontend URL (redirects may only stay below it); `index`: the entry point, which is
   * never stored (its validators go too: there is nothing to revalidate).
   */
  async fetch(
    url: URL,
    base: URL,
    method: 'GET' | 'HEAD',
    incoming: IncomingHttpHeaders,
    index: boolean,
  ): Promise<OriginAnswer> {
    const headers: Record<string, string> = {};
    for (const name of REQUEST_HEADERS) {
      const value = incoming[name];
      if (typeof value === 'string' && !(index && name.startsWith('if-'))) headers[name] = value;
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await this.agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method,
        headers,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
    } catch (err) {
      throw originError(err);
    }
    const out: Record<string, string> = {};
    for (const name of RESPONSE_HEADERS) {
      const value = res.headers[name];
      if (typeof value === 'string') out[name] = value;
    }
    if (index) {
      out['cache-control'] = CACHE_NONE;
      delete out.etag;
      delete out['last-modified'];
      delete out.expires;
    }
    if (PASSED.has(res.statusCode))
      return { kind: 'response', status: res.statusCode, headers: out, body: res.body };
    res.body.resume();
    if (MISSING.has(res.statusCode)) return { kind: 'not-found' };
    const redirect = res.headers.location;
    if (res.statusCode >= 300 && res.statusCode < 400 && typeof redirect === 'string') {
      // A redirect within the frontend URL (`/app` → `/app/`) becomes the same redirect on our
      // origin; one elsewhere would send the browser to the origin itself, which is not ours to do.
      const target = new URL(redirect, url);
      if (target.origin === base.origin && target.pathname.startsWith(base.pathname)) {
        const location = `/${target.pathname.slice(base.pathname.length)}${target.search}`;
        // `<base>/evil.example/` would become `//evil.example/`: another site, for the browser.
        if (isSafeRelativePath(location)) return { kind: 'redirect', status: res.statusCode, location };
      }
      throw new BffError('BFF_FRONTEND_UNAVAILABLE', {
        reason: 'redirect',
        detail: 'the frontend origin redirected elsewhere',
      });
    }
    throw new BffError('BFF_FRONTEND_UNAVAILABLE', {
      reason: 'status',
      detail: `the frontend origin answered ${res.statusCode}`,
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

function originError(err: unknown): BffError {
  const timeout =
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError ||
    err instanceof undiciErrors.ConnectTimeoutError;
  return new BffError('BFF_FRONTEND_UNAVAILABLE', {
    cause: err,
    reason: timeout ? 'timeout' : 'unreachable',
    ...(timeout ? { status: 504 } : {}),
  });
}
