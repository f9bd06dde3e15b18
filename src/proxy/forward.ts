import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher, errors as undiciErrors } from 'undici';
import type { RouteConfig, TlsConfig } from '../config/types.js';
import { BffError } from '../errors.js';
import { isInvalidTokenChallenge, isUseDpopNonceChallenge } from '../dpop/challenge.js';
import { isUnsafeSegment } from './target.js';
import { injectTraceContext } from '../observability/tracing.js';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) are for one connection only and are never forwarded; nor are
 * credentials the browser holds for us (`Cookie`), a browser-supplied `Authorization` (the token
 * we attach is the only one the upstream may see), our CSRF header, or `Host` (undici sets it).
 */
const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);
const REQUEST_DROP = new Set([
  ...HOP_BY_HOP,
  'host',
  'cookie',
  'authorization',
  'dpop',
  'content-length',
  'expect',
]);
/**
 * What a client may claim about itself (its address, the host and scheme it used) and headers
 * some servers take as the request path: never forwarded as sent. The BFF sets the X-Forwarded-*
 * and Forwarded (RFC 7239) headers itself from what it knows (see `forwardedHeaders`), so an
 * upstream never acts on a client's claim.
 */
const CLIENT_CLAIMS = new Set([
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'client-ip',
  'true-client-ip',
  'x-cluster-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-original-url',
  'x-rewrite-url',
  'x-original-forwarded-for',
]);
const FORWARDED_PREFIX = 'x-forwarded-';

/** Upstreams never set cookies on our origin: the browser's only cookies are ours. */
const RESPONSE_DROP = new Set([...HOP_BY_HOP, 'set-cookie', 'content-length', 'dpop-nonce']);

export interface ForwardRequest {
  readonly route: RouteConfig;
  /** Path below /api/<name>/, without query, as received (still percent-encoded). */
  readonly rest: string;
  /** Raw query string without '?', or ''. */
  readonly query: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly csrfHeader: string;
  /** The raw request, streamed to the upstream when it has a body. */
  readonly raw: IncomingMessage;
  readonly authorization: string | undefined;
  readonly requestId: string;
  /** For DPoP-bound tokens: a fresh proof per upstream request (RFC 9449 §7), with the RS's nonce. */
  readonly dpop?: UpstreamDpop | undefined;
  /** For the user's token: renew it when the upstream refuses it as invalid_token (RFC 6750 §3.1). */
  readonly refresh?: UpstreamRefresh | undefined;
  /** Headers the BFF asserts (the verified service caller); incoming ones of these names are dropped. */
  readonly asserted?: Readonly<Record<string, string>> | undefined;
  /** What the BFF knows of the request: the client address (after trusted proxies) and public URL. */
  readonly forwarded: ForwardedFacts;
}

export interface ForwardedFacts {
  /** The client's address as the BFF determined it (MS_BFF_TRUSTED_PROXIES decides whom to believe). */
  readonly clientIp: string;
  /** The public URL's host (with port when not the default) and scheme, from configuration. */
  readonly host: string;
  readonly proto: string;
}

/** Prefix of the headers the BFF asserts to upstreams; never taken from a client. */
export const ASSERTED_HEADER_PREFIX = 'x-bff-caller-';

export interface UpstreamDpop {
  readonly accessToken: string;
  proof(htm: string, htu: URL, nonce: string | undefined): Promise<string>;
  nonce(origin: string): Promise<string | undefined>;
  rememberNonce(origin: string, nonce: string): void;
  /** Told when a nonce retry could not be made because the body cannot be replayed. */
  retrySkipped(): void;
}

export interface UpstreamRefresh {
  /** A refreshed credential, or undefined when no refresh may or could be made (rate limit, failure). */
  renew(): Promise<{ authorization?: string; dpop?: UpstreamDpop } | undefined>;
  /** Told when the retry could not be made. */
  skipped(reason: 'body_not_replayable'): void;
}

/**
 * Bodies up to this size are buffered for user-token routes so a `use_dpop_nonce` challenge (RFC 9449
 * §9) or a refused token can be retried with the same body; larger or unsized bodies stream and are
 * not retried.
 */
export const MAX_REPLAYABLE_BODY = 64 * 1024;

export interface ForwardResponse {
  readonly status: number;
  /** What the browser may see (hop-by-hop, Set-Cookie and DPoP-Nonce removed). */
  readonly headers: Record<string, string | string[]>;
  readonly body: Readable;
  /** The upstream's DPoP-Nonce (RFC 9449 §9), kept for us: the browser does not do DPoP. */
  readonly dpopNonce: string | undefined;
}

/**
 * Streams a request to an upstream and the response back, neither buffered (undici, one pooled
 * Agent for all upstreams). Timeouts are the route's: time to response headers and body idle time.
 */
export class Forwarder {
  private readonly agent: Dispatcher;
  /** For routes with certificate-bound tokens: presents MTLS_CERT (RFC 8705 §3). */
  private readonly mtlsAgent: Dispatcher | undefined;

  /** `dispatcher` replaces the pooled agent (micro-benchmarks measure the forwarder without a network). */
  constructor(tls?: TlsConfig, dispatcher?: Dispatcher) {
    const connect = { ...(tls?.ca ? { ca: tls.ca } : {}), minVersion: 'TLSv1.2' as const };
    this.agent =
      dispatcher ?? new Agent({ keepAliveTimeout: 10_000, connections: 256, pipelining: 1, connect });
    this.mtlsAgent =
      tls?.cert && tls.key
        ? new Agent({
            keepAliveTimeout: 10_000,
            connections: 256,
            pipelining: 1,
            connect: { ...connect, cert: tls.cert, key: tls.key },
          })
        : undefined;
  }

  /**
   * Not async, nor are `attempt`, `afterFirst` and `send` (only bodies to buffer and DPoP proofs
   * await): each async layer on every proxied call costs promises, and an async function that
   * returns a promise costs extra microtask turns (with AsyncLocalStorage's promise hooks on, each
   * runs them too). A Bearer GET makes one promise here.
   */
  forward(req: ForwardRequest): Promise<ForwardResponse> {
    let path: string;
    let headers: Record<string, string | string[]>;
    try {
      path = upstreamPath(req.route.url, req.rest, req.query);
      headers = requestHeaders(req);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const hasBody = requestHasBody(req.headers);
    // Only requests that may be retried (a DPoP nonce challenge, a refreshed token) buffer their body.
    if (!req.dpop && !req.refresh) return this.send(req, path, headers, hasBody ? req.raw : null);
    if (!hasBody) return this.firstThenRetry(req, path, headers, null, true);
    const length = Number(req.headers['content-length']);
    if (!Number.isFinite(length) || length > MAX_REPLAYABLE_BODY)
      return this.firstThenRetry(req, path, headers, req.raw, false);
    return readBody(req.raw, MAX_REPLAYABLE_BODY).then((body) =>
      this.firstThenRetry(req, path, headers, body, true),
    );
  }

  private firstThenRetry(
    req: ForwardRequest,
    path: string,
    headers: Record<string, string | string[]>,
    body: Buffer | IncomingMessage | null,
    replayable: boolean,
  ): Promise<ForwardResponse> {
    const first = this.attempt(req, path, headers, body, replayable, req.dpop);
    return req.refresh
      ? first.then((res) => this.afterFirst(req, path, headers, body, replayable, res))
      : first;
  }

  /**
   * RFC 6750 §3.1 / RFC 9449 §7.1: the resource server refuses the token itself. One refresh (the
   * caller rate-limits it per session) and one retry with the new token, replayable bodies only.
   */
  private afterFirst(
    req: ForwardRequest,
    path: string,
    headers: Record<string, string | string[]>,
    body: Buffer | IncomingMessage | null,
    replayable: boolean,
    first: ForwardResponse,
  ): ForwardResponse | Promise<ForwardResponse> {
    if (first.status !== 401 || !req.refresh || !isInvalidTokenChallenge(first.headers['www-authenticate']))
      return first;
    if (!replayable) {
      req.refresh.skipped('body_not_replayable');
      return first;
    }
    return this.renewAndRetry(req, req.refresh, path, headers, body, first);
  }

  private async renewAndRetry(
    req: ForwardRequest,
    refresh: UpstreamRefresh,
    path: string,
    headers: Record<string, string | string[]>,
    body: Buffer | IncomingMessage | null,
    first: ForwardResponse,
  ): Promise<ForwardResponse> {
    const renewed = await refresh.renew();
    if (!renewed) return first;
    first.body.resume();
    const retryHeaders = { ...headers };
    delete retryHeaders.dpop;
    if (renewed.authorization !== undefined) retryHeaders.authorization = renewed.authorization;
    return this.attempt(req, path, retryHeaders, body, true, renewed.dpop);
  }

  /** One request; with DPoP, a proof and at most one retry for a `use_dpop_nonce` challenge. */
  private attempt(
    req: ForwardRequest,
    path: string,
    headers: Record<string, string | string[]>,
    body: Buffer | IncomingMessage | null,
    replayable: boolean,
    dpop: UpstreamDpop | undefined,
  ): Promise<ForwardResponse> {
    return dpop
      ? this.attemptDpop(req, path, headers, body, replayable, dpop)
      : this.send(req, path, headers, body);
  }

  private async attemptDpop(
    req: ForwardRequest,
    path: string,
    headers: Record<string, string | string[]>,
    body: Buffer | IncomingMessage | null,
    replayable: boolean,
    dpop: UpstreamDpop,
  ): Promise<ForwardResponse> {
    // RFC 9449 §7.1: the token goes as `DPoP`, with a proof for this exact method and URL.
    const origin = req.route.url.origin;
    const htu = new URL(path.split('?')[0] as string, origin);
    headers.authorization = `DPoP ${dpop.accessToken}`;
    headers.dpop = await dpop.proof(req.method, htu, await dpop.nonce(origin));
    let res = await this.send(req, path, headers, body);
    const nonce = res.dpopNonce;
    if (nonce) dpop.rememberNonce(origin, nonce);
    if (res.status === 401 && nonce && isUseDpopNonceChallenge(res.headers['www-authenticate'])) {
      if (!replayable) {
        dpop.retrySkipped();
        return res;
      }
      // Exactly one retry (https://www.rfc-editor.org/rfc/rfc9449#section-9; a server that always demands
      // a nonce must not cause a loop), with a new proof (new jti) carrying the nonce.
      res.body.resume();
      headers.dpop = await dpop.proof(req.method, htu, nonce);
      res = await this.send(req, path, headers, body);
      if (res.dpopNonce) dpop.rememberNonce(origin, res.dpopNonce);
    }
    return res;
  }

  private send(
    req: ForwardRequest,
    path: string,
    headers: Record<string, string | string[]>,
    body: Buffer | IncomingMessage | null,
  ): Promise<ForwardResponse> {
    const agent = req.route.mtls ? this.mtlsAgent : this.agent;
    if (!agent) {
      return Promise.reject(new BffError('BFF_INTERNAL', { reason: 'mtls_route_without_certificate' }));
    }
    const options: Dispatcher.RequestOptions = {
      origin: req.route.url.origin,
      path,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body,
      headersTimeout: req.route.timeoutMs,
      bodyTimeout: req.route.timeoutMs,
    };
    // undici's callback form: one promise (ours) instead of undici's plus a `then` on it.
    return new Promise((resolve, reject) => {
      try {
        agent.request(options, (err, res) => {
          if (err) return reject(upstreamError(err));
          try {
            resolve(forwardResponse(res));
          } catch (e) {
            reject(upstreamError(e));
          }
        });
      } catch (err) {
        reject(upstreamError(err));
      }
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
    await this.mtlsAgent?.close();
  }
}

/**
 * Join the upstream base path and the rest. Unsafe segments (dot segments, with path parameters or
 * encoded once or twice, and encoded separators; see isUnsafeSegment) are refused rather than
 * normalised: `/api/echo/..;/admin` must never escape the configured base path on any upstream.
 */
export function upstreamPath(base: URL, rest: string, query: string): string {
  for (const segment of rest.split('/')) {
    if (isUnsafeSegment(segment)) {
      throw new BffError('BFF_REQUEST_INVALID', {
        reason: 'path_traversal',
        detail: 'dot segments and encoded separators are not allowed',
      });
    }
  }
  const prefix = base.pathname.endsWith('/') ? base.pathname.slice(0, -1) : base.pathname;
  return `${prefix}/${rest}${query ? `?${query}` : ''}`;
}

async function readBody(stream: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > limit) throw new BffError('BFF_REQUEST_INVALID', { status: 413, reason: 'body_too_large' });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function requestHasBody(headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length !== '0';
}

function requestHeaders(req: ForwardRequest): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connectionListed = listed(req.headers.connection);
  const incoming = req.headers;
  for (const name in incoming) {
    const value = incoming[name];
    if (
      value === undefined ||
      REQUEST_DROP.has(name) ||
      name === req.csrfHeader ||
      name.startsWith(ASSERTED_HEADER_PREFIX) ||
      name.startsWith(FORWARDED_PREFIX) ||
      CLIENT_CLAIMS.has(name) ||
      connectionListed.has(name)
    )
      continue;
    out[name] = value;
  }
  if (requestHasBody(req.headers) && req.headers['content-length'] !== undefined) {
    out['content-length'] = req.headers['content-length'];
  }
  out['x-request-id'] = req.requestId;
  Object.assign(out, forwardedHeaders(req.forwarded));
  // W3C Trace Context: the upstream continues the request's trace (same trace id, our span as parent).
  injectTraceContext(out);
  if (req.asserted) for (const name in req.asserted) out[name] = req.asserted[name] as string;
  if (req.authorization !== undefined) out.authorization = req.authorization;
  return out;
}

/**
 * The forwarding headers an upstream sees, all set by us: the de-facto X-Forwarded-For/-Host/-Proto
 * and their standard form, Forwarded (RFC 7239 §4, with an IPv6 `for` quoted and bracketed, §6).
 * One hop: the client as we determined it; proxies in front of us are ours, not the upstream's concern.
 */
export function forwardedHeaders(facts: ForwardedFacts): Record<string, string> {
  const ip = facts.clientIp;
  const node = ip.includes(':') ? `"[${ip}]"` : ip;
  return {
    'x-forwarded-for': ip,
    'x-forwarded-host': facts.host,
    'x-forwarded-proto': facts.proto,
    forwarded: `for=${node};host="${facts.host}";proto=${facts.proto}`,
  };
}

function responseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connectionListed = listed(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || RESPONSE_DROP.has(name) || connectionListed.has(name)) continue;
    out[name] = value;
  }
  return out;
}

const NONE: ReadonlySet<string> = new Set();

/** Header names listed in `Connection` (RFC 9110 §7.6.1): hop-by-hop too. Usually none: no allocation. */
function listed(connection: string | string[] | undefined): ReadonlySet<string> {
  if (connection === undefined || connection === 'keep-alive' || connection === 'close') return NONE;
  const v = Array.isArray(connection) ? connection.join(',') : connection;
  return new Set(
    v
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
}

function forwardResponse(res: Dispatcher.ResponseData): ForwardResponse {
  const nonce = res.headers['dpop-nonce'];
  return {
    status: res.statusCode,
    headers: responseHeaders(res.headers),
    body: res.body,
    dpopNonce: typeof nonce === 'string' ? nonce : undefined,
  };
}

function upstreamError(err: unknown): BffError {
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return new BffError('BFF_UPSTREAM_TIMEOUT', { cause: err, reason: 'timeout' });
  }
  if (err instanceof undiciErrors.ConnectTimeoutError) {
    return new BffError('BFF_UPSTREAM_TIMEOUT', { cause: err, reason: 'connect_timeout' });
  }
  if (err instanceof BffError) return err;
  return new BffError('BFF_UPSTREAM_UNAVAILABLE', { cause: err, reason: 'unreachable' });
}
