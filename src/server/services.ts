import type { IncomingMessage } from 'node:http';
import type { BffConfig } from '../config/types.js';
import type { ClientTokens } from '../oauth/client-tokens.js';
import type { FipsEvidence } from '../fips/evidence.js';
import type { IdpClient } from '../oauth/idp-client.js';
import type { DpopKeyCache, DpopNonceCache } from '../dpop/client.js';
import type { JwksCache } from '../oauth/jwks-cache.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import type { AccessTokens } from '../proxy/access-token.js';
import type { Forwarder } from '../proxy/forward.js';
import type { LoginTransactions } from '../session/login-transaction.js';
import type { SessionManager } from '../session/session-manager.js';
import type { KeyValueStore } from '../store/store.js';

/** Everything a request handler may use, built once by buildApp (composition, no globals). */
export interface BffServices {
  /** The frontend these services serve (`default` with one): metric label and audit field. */
  readonly frontend: string;
  readonly config: BffConfig;
  readonly store: KeyValueStore;
  readonly idp: IdpClient;
  readonly metrics: Metrics;
  /** Audit events (docs/audit.md): JSON log lines with an `event` field. */
  readonly audit: AuditLog;
  readonly sessions: SessionManager;
  readonly transactions: LoginTransactions;
  readonly tokens: AccessTokens;
  /** The BFF's own client-credentials tokens, for `client` and `user-or-client` routes. */
  readonly clientTokens: ClientTokens;
  readonly forwarder: Forwarder;
  readonly clock: () => number;
  /** The IdP's JWKS for the JWTs we verify ourselves (JARM). */
  readonly jwks: JwksCache;
  readonly dpopKeys: DpopKeyCache;
  /** DPoP nonces of the AS and of upstream APIs, per origin, shared through the store. */
  readonly dpopNonces: DpopNonceCache;
  /** FIPS evidence (OpenSSL, providers, self-test, TLS pinning) for /readyz and admin reports. */
  readonly fips: FipsEvidence;
}

/** Name of the browser-binding cookie for login transactions (one per browser, shared by tabs). */
export const LOGIN_BINDING_COOKIE = '__Host-bff-login';

/** The frontend a request was matched to (server/frontends.ts): its services and where it is served. */
export interface RequestFrontend {
  readonly name: string;
  readonly services: BffServices;
  /** The frontend's pathPrefix without its trailing slash: '' or '/banking'. */
  readonly basePath: string;
}

const requestFrontends = new WeakMap<object, RequestFrontend>();

/** Remember the frontend of a raw request (set before routing, read by every handler). */
export function attachFrontend(raw: object, frontend: RequestFrontend): void {
  requestFrontends.set(raw, frontend);
}

/** The frontend a request was matched to; undefined when none was (the embeddable plugin: one). */
export function frontendOf(request: { readonly raw: object }): RequestFrontend | undefined {
  return requestFrontends.get(request.raw);
}

/** The services of the request's frontend, or `fallback` (the only frontend) when none was matched. */
export function servicesFor(request: { readonly raw: object }, fallback: BffServices): BffServices {
  return requestFrontends.get(request.raw)?.services ?? fallback;
}

/** The request's frontend path (`''` or `/banking`) before `/auth/…` and `/api/…`. */
export function basePathOf(request: { readonly raw: object }): string {
  return requestFrontends.get(request.raw)?.basePath ?? '';
}

/**
 * The frontend of a WebSocket upgrade (which bypasses Fastify's router and its rewriteUrl); it
 * rewrites `raw.url` to the URL inside the frontend. undefined: no frontend serves it.
 */
export type UpgradeFrontend = (raw: IncomingMessage) => RequestFrontend | undefined;
