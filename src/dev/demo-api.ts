/**
 * A demo upstream API for the development setup: it trusts nothing but a JWT access token (RFC 9068)
 * from the configured issuer, and tells the caller what it saw, never echoing the token itself.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  calculateJwkThumbprint,
  createRemoteJWKSet,
  EmbeddedJWK,
  type JWK,
  type JWTPayload,
  jwtVerify,
} from 'jose';

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
    // RFC 6750 §2.1 / RFC 9449 §7.1: the scheme is case-insensitive; one space, then the token.
    const match = /^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/i.exec(req.headers.authorization ?? '');
    if (!match?.[1] || !match[2]) {
      unauthorized(res, 'missing bearer or DPoP token');
      return;
    }
    const scheme = match[1].toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
    const token = match[2];
    verifyCall(token, scheme, req).then(
      (view) => sendJson(res, 200, { ...view, receivedAt: new Date().toISOString() }),
      () => unauthorized(res, 'the access token is invalid'),
    );
  });

  /**
   * The upstream's view of one call: the JWT access token (RFC 9068) verified, and for DPoP the proof
   * (RFC 9449 §4.3: typ, alg, signature by the embedded public key, htm, htu, iat, ath) and the
   * binding (`cnf.jkt` equals the proof key's RFC 7638 thumbprint). A DPoP-bound token presented as
   * Bearer is refused (§7.2). What it returns describes the token; it never echoes it.
   */
  async function verifyCall(token: string, scheme: 'Bearer' | 'DPoP', req: IncomingMessage) {
    const { payload } = await jwtVerify<
      JWTPayload & { scope?: string; client_id?: string; cnf?: { jkt?: string } }
    >(token, jwks, {
      issuer: opts.issuer,
      ...(opts.audience !== undefined ? { audience: opts.audience } : {}),
      algorithms: ['PS256', 'ES256'],
      // RFC 9068 §4: the header typ must be at+jwt, so ID tokens and other JWTs are refused.
      typ: 'at+jwt',
      requiredClaims: ['sub', 'exp', 'client_id'],
    });
    const jkt = payload.cnf?.jkt;
    if (scheme === 'Bearer' && jkt !== undefined) throw new Error('DPoP-bound token presented as Bearer');
    let binding = 'none: a bearer token, usable by whoever holds it';
    if (scheme === 'DPoP') {
      const proof = req.headers.dpop;
      if (typeof proof !== 'string' || jkt === undefined) throw new Error('DPoP without proof or cnf.jkt');
      const { payload: claims, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: ['ES256', 'PS256'],
        maxTokenAge: '60s',
      });
      const htu = `http://${req.headers.host ?? ''}${(req.url ?? '/').split('?')[0]}`;
      const ath = createHash('sha256').update(token).digest('base64url');
      if (claims.htm !== req.method || claims.htu !== htu || claims.ath !== ath)
        throw new Error('proof mismatch');
      if ((await calculateJwkThumbprint(protectedHeader.jwk as JWK)) !== jkt) throw new Error('wrong key');
      binding = 'DPoP: proof verified (htm, htu, ath, iat) and signed by the key whose thumbprint is cnf.jkt';
    }
    return {
      tokenType: scheme,
      binding,
      cnf: jkt === undefined ? null : { jkt },
      sub: payload.sub,
      scope: payload.scope,
      aud: payload.aud,
      client_id: payload.client_id,
      exp: payload.exp,
    };
  }

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
