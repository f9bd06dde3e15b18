import { randomUUID } from 'node:crypto';
import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type { RouteConfig } from '../config/types.js';
import { BffError, isBffError } from '../errors.js';
import type { BffServices } from '../server/services.js';
import { upstreamCredential } from './credentials.js';
import { forwardedHeaders, upstreamPath } from './forward.js';
import { proxyTarget } from './target.js';

/**
 * Close codes we send to the browser (RFC 6455 §7.4.2: 4000–4999 are for applications). A client
 * reconnects after 4401 only once the user has signed in again.
 */
export const WS_CLOSE = {
  sessionEnded: 4401,
  tokenExpired: 4408,
  /** RFC 6455 §7.4.1: the endpoint is going away (BFF shutting down). */
  goingAway: 1001,
  /** RFC 6455 §7.4.1: the other side failed. */
  upstreamFailed: 1011,
} as const;

/** Browser handshake headers that go upstream; everything else (cookies above all) stays here. */
const HANDSHAKE_FORWARD = ['user-agent', 'accept-language'] as const;
/** Per message, each way (ws refuses larger ones with 1009). */
const MAX_MESSAGE_BYTES = 1024 * 1024;

interface Bridge {
  readonly route: RouteConfig;
  readonly sessionKey: string | undefined;
  readonly client: WebSocket;
  readonly upstream: WebSocket;
  readonly timers: NodeJS.Timeout[];
}

export interface WebSocketLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * WebSocket proxying for routes with `websocket: true` (RFC 6455). The BFF terminates both
 * connections (ws does the framing) and relays messages, so it can close the browser's side with a
 * code that says why, and never passes the browser's cookies upstream.
 *
 * Authentication: the session cookie plus an exact `Origin` check. Browsers cannot add the CSRF
 * header to a WebSocket handshake, and the handshake is not subject to CORS, so Origin is what
 * stops a cross-site page from opening a socket with the user's cookie (cross-site WebSocket
 * hijacking; RFC 6455 §10.2). The upstream handshake carries the route's token (Bearer, or DPoP
 * with a proof for the handshake's GET, RFC 9449 §7). The connection ends when its session ends
 * on this instance (logout, back-channel logout) at once, when it ends on another instance at the
 * next periodic re-check, and, with `closeOnTokenExpiry`, when the token it was opened with expires.
 */
export class WebSocketProxy {
  private readonly server = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE_BYTES,
    // The browser gets the subprotocol the upstream chose, or none.
    handleProtocols: (_offered, request) => this.chosen.get(request) ?? false,
  });
  private readonly chosen = new WeakMap<IncomingMessage, string>();
  private readonly bridges = new Set<Bridge>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly s: BffServices,
    /** The router's static segments before the route name (`['api']`, or a prefix plus `api`). */
    private readonly mount: readonly string[],
    private readonly log: WebSocketLog,
    private readonly recheckMs: number,
  ) {
    this.unsubscribe = s.sessions.onEnded((key) => this.closeSession(key, WS_CLOSE.sessionEnded));
  }

  /** Handle one upgrade request for `route`; never throws (failures are answered on the socket). */
  async upgrade(route: RouteConfig, request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    try {
      if (!route.websocket) throw new BffError('BFF_ROUTE_NOT_FOUND', { detail: 'not a WebSocket route' });
      if (route.enabled === false) throw new BffError('BFF_ROUTE_DISABLED', { reason: 'route_disabled' });
      // RFC 6455 §10.2: browsers always send Origin on a handshake; only our own origin may open one.
      if (request.headers.origin !== this.s.config.publicOrigin) {
        throw new BffError('BFF_CSRF_FAILED', { reason: 'websocket_origin' });
      }
      const log = { warn: (obj: object, msg: string) => this.log.warn(obj, msg) };
      const credential = await upstreamCredential(this.s, route, { headers: request.headers, log });
      const session = credential.session;
      const target = proxyTarget(request.url ?? '/', this.mount, route.name);
      const url = new URL(upstreamPath(route.url, target.rest, target.query), route.url);
      const headers: Record<string, string> = {
        ...forwardedHeaders({
          clientIp: request.socket.remoteAddress ?? '',
          host: this.s.config.publicUrl.host,
          proto: this.s.config.publicUrl.protocol.slice(0, -1),
        }),
        'x-request-id': randomUUID(),
      };
      for (const name of HANDSHAKE_FORWARD) {
        const value = request.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      if (credential.authorization) headers.authorization = credential.authorization;
      if (credential.dpop) {
        headers.authorization = `DPoP ${credential.dpop.accessToken}`;
        const nonce = await credential.dpop.nonce(url.origin);
        headers.dpop = await credential.dpop.proof('GET', url, nonce);
      }
      const upstream = await this.connectUpstream(route, url, headers, request);
      if (upstream.protocol) this.chosen.set(request, upstream.protocol);
      this.server.handleUpgrade(request, socket, head, (client) => {
        const expiresAt = credential.expiresAt ?? session?.data.accessTokenExpiresAt;
        this.bridge(route, session?.key, client, upstream, expiresAt);
      });
    } catch (err) {
      const error = isBffError(err) ? err : new BffError('BFF_UPSTREAM_UNAVAILABLE', { cause: err });
      this.s.metrics.websocket(route.name, 'refused');
      this.log.warn({ route: route.name, code: error.code }, 'WebSocket upgrade refused');
      refuse(socket, error);
    }
  }

  /** Close every connection (shutdown): 1001, going away. */
  close(): void {
    this.unsubscribe();
    for (const bridge of this.bridges) this.end(bridge, WS_CLOSE.goingAway, 'going away');
    this.server.close();
  }

  private connectUpstream(
    route: RouteConfig,
    url: URL,
    headers: Record<string, string>,
    request: IncomingMessage,
  ): Promise<WebSocket> {
    const wsUrl = new URL(url);
    wsUrl.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const offered = request.headers['sec-websocket-protocol'];
    const protocols = offered ? offered.split(',').map((p) => p.trim()) : [];
    const tls = this.s.config.tls;
    const upstream = new WebSocket(wsUrl, protocols, {
      headers,
      handshakeTimeout: route.timeoutMs,
      maxPayload: MAX_MESSAGE_BYTES,
      perMessageDeflate: false,
      followRedirects: false,
      ...(tls.ca ? { ca: tls.ca } : {}),
      // RFC 8705 §3: certificate-bound tokens go over a connection that presents the certificate.
      ...(route.mtls && tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
      minVersion: 'TLSv1.2',
    });
    return new Promise((resolve, reject) => {
      upstream.once('open', () => resolve(upstream));
      upstream.once('unexpected-response', (_req, res) => {
        res.resume();
        upstream.terminate();
        reject(
          res.statusCode === 401 || res.statusCode === 403
            ? new BffError('BFF_UPSTREAM_UNAVAILABLE', { reason: `upstream_refused_${res.statusCode}` })
            : new BffError('BFF_UPSTREAM_UNAVAILABLE', { reason: `upstream_${res.statusCode ?? 0}` }),
        );
      });
      upstream.once('error', (cause) => reject(new BffError('BFF_UPSTREAM_UNAVAILABLE', { cause })));
    });
  }

  private bridge(
    route: RouteConfig,
    sessionKey: string | undefined,
    client: WebSocket,
    upstream: WebSocket,
    tokenExpiresAt: number | undefined,
  ): void {
    const bridge: Bridge = { route, sessionKey, client, upstream, timers: [] };
    this.bridges.add(bridge);
    this.s.metrics.websocket(route.name, 'opened');
    const relay = (to: WebSocket) => (data: RawData, isBinary: boolean) => {
      if (to.readyState === WebSocket.OPEN) to.send(data, { binary: isBinary });
    };
    client.on('message', relay(upstream));
    upstream.on('message', relay(client));
    client.on('close', (code, reason) => this.end(bridge, upstreamCode(code), reason.toString()));
    upstream.on('close', (code, reason) => this.end(bridge, upstreamCode(code), reason.toString()));
    client.on('error', () => this.end(bridge, WS_CLOSE.upstreamFailed, 'client error'));
    upstream.on('error', () => this.end(bridge, WS_CLOSE.upstreamFailed, 'upstream error'));
    if (sessionKey) {
      // A session ended by another instance sharing the store: noticed at the next re-check.
      const recheck = setInterval(() => {
        this.s.sessions.reload(sessionKey).then(
          (live) => {
            if (!live) this.end(bridge, WS_CLOSE.sessionEnded, 'session ended');
          },
          () => undefined, // A store outage is not proof that the session ended.
        );
      }, this.recheckMs);
      recheck.unref();
      bridge.timers.push(recheck);
    }
    if (route.closeOnTokenExpiry && tokenExpiresAt !== undefined) {
      const expiry = setTimeout(
        () => this.end(bridge, WS_CLOSE.tokenExpired, 'token expired'),
        Math.max(0, tokenExpiresAt - Date.now()),
      );
      expiry.unref();
      bridge.timers.push(expiry);
    }
  }

  private closeSession(key: string, code: number): void {
    for (const bridge of this.bridges) if (bridge.sessionKey === key) this.end(bridge, code, 'session ended');
  }

  private end(bridge: Bridge, code: number, reason: string): void {
    if (!this.bridges.delete(bridge)) return;
    for (const timer of bridge.timers) clearTimeout(timer);
    this.s.metrics.websocket(bridge.route.name, 'closed');
    for (const ws of [bridge.client, bridge.upstream]) {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        ws.close(code, reason.slice(0, 120));
        // A peer that never answers the close handshake is cut off (RFC 6455 §7.1.1).
        setTimeout(() => ws.terminate(), 5_000).unref();
      }
    }
  }
}

/** Codes a peer may send that we may not (1005, 1006, 1015 are never sent on the wire): relay as 1000. */
function upstreamCode(code: number): number {
  return code === 1000 || (code >= 1001 && code <= 1014 && code !== 1005 && code !== 1006) || code >= 3000
    ? code
    : 1000;
}

/**
 * Answer a refused handshake on the raw socket with a problem+json HTTP response (RFC 9457); the
 * socket was never handed to the HTTP server's reply path, so this writes the small response itself.
 */
function refuse(socket: Duplex, error: BffError): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({
    type: 'about:blank',
    title: error.message,
    status: error.statusCode,
    code: error.code,
  });
  socket.end(
    `HTTP/1.1 ${error.statusCode} ${STATUS_CODES[error.statusCode] ?? 'Error'}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      'Cache-Control: no-store\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/** The route an upgrade request is for, when it is one of ours (the path names `<mount>/<route>`). */
export function routeOf(
  s: Pick<BffServices, 'config'>,
  mount: readonly string[],
  url: string,
): RouteConfig | undefined {
  const path = url.split('?')[0] ?? '';
  const segments = path.split('/');
  if (mount.some((m, i) => segments[i + 1] !== m)) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(segments[mount.length + 1] ?? '');
  } catch {
    return undefined;
  }
  return s.config.routes.get(name);
}
