/**
 * A demo upstream API for the development setup: it trusts nothing but a JWT access token (RFC 9068)
 * from the configured issuer, and tells the caller what it saw, never echoing the token itself.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';

export interface DemoApiOptions {
  /** The IdP issuer; its discovery document names the JWKS. */
  issuer: string;
  /** Expected `aud`; unchecked when absent. */
  audience?: string;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
}

export interface DemoApi {
  url: string;
  close(): Promise<void>;
}

const DISCOVERY_TIMEOUT_MS = 5_000;

async function discoverJwksUri(issuer: string): Promise<URL> {
  // OIDC Discovery §4: the configuration lives at <issuer>/.well-known/openid-configuration.
  const wellKnown = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const response = await fetch(wellKnown, { signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`demo API: discovery at ${wellKnown} failed with ${response.status}`);
  const metadata = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
  // OIDC Discovery §4.3: the document must name the issuer it was fetched for.
  if (metadata.issuer !== issuer) throw new Error(`demo API: discovery issuer mismatch for ${issuer}`);
  if (typeof metadata.jwks_uri !== 'string') throw new Error('demo API: discovery has no jwks_uri');
  return new URL(metadata.jwks_uri);
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(JSON.stringify(body));
}

/** RFC 6750 §3: a bearer challenge; the error is the only detail given. */
function unauthorized(res: ServerResponse, description: string): void {
  sendJson(
    res,
    401,
    { error: 'invalid_token', error_description: description },
    { 'WWW-Authenticate': `Bearer error="invalid_token", error_description="${description}"` },
  );
}

export async function startDemoApi(opts: DemoApiOptions): Promise<DemoApi> {
  const jwks = createRemoteJWKSet(await discoverJwksUri(opts.issuer), {
    timeoutDuration: DISCOVERY_TIMEOUT_MS,
  });
  const host = opts.host ?? '127.0.0.1';

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/whoami') {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    if (req.method !== 'GET') {
      sendJson(res, 405, { error: 'method_not_allowed' }, { Allow: 'GET' });
      return;
    }
    // RFC 6750 §2.1: "Bearer" is case-insensitive; one space, then the token.
    const match = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(req.headers.authorization ?? '');
    if (!match?.[1]) {
      unauthorized(res, 'missing bearer token');
      return;
    }
    jwtVerify<JWTPayload & { scope?: string; client_id?: string }>(match[1], jwks, {
      issuer: opts.issuer,
      ...(opts.audience !== undefined ? { audience: opts.audience } : {}),
      algorithms: ['PS256', 'ES256'],
      // RFC 9068 §4: the header typ must be at+jwt, so ID tokens and other JWTs are refused.
      typ: 'at+jwt',
      requiredClaims: ['sub', 'exp', 'client_id'],
    }).then(
      ({ payload }) =>
        sendJson(res, 200, {
          sub: payload.sub,
          scope: payload.scope,
          aud: payload.aud,
          client_id: payload.client_id,
          exp: payload.exp,
          receivedAt: new Date().toISOString(),
        }),
      () => unauthorized(res, 'the access token is invalid'),
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
