import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type DevIdp, type DevIdpOptions, startDevIdp } from '../../src/dev/idp.js';
import { BffError } from '../../src/errors.js';
import { JwksCache } from '../../src/oauth/jwks-cache.js';
import {
  type DpopFailureReason,
  DpopNonces,
  jwtAccessTokenVerifier,
  validateDpopRequest,
} from '../../src/dpop/validation.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { clientMetadata, freePort, makeClientKey, type RunningBff, startBff } from './bff-harness.js';

export interface DpopSeen {
  method: string;
  path: string;
  scheme: string | undefined;
  hadProof: boolean;
  status: number;
  reason?: DpopFailureReason | string;
  body: string;
}

/**
 * A resource server that enforces DPoP for real (RFC 9449 §7 and §9): JWT access tokens verified
 * against the IdP's JWKS, proofs checked by the BFF's own validator, server nonces required. Echoes
 * the request body on success so body replay after a nonce challenge can be checked.
 */
export async function startDpopUpstream(opts: {
  issuer: string;
  jwksUri: string;
  audience: string;
  /** Default true; false: a resource server that never asks for a nonce. */
  requireNonce?: boolean;
}) {
  const seen: DpopSeen[] = [];
  let nonces = new DpopNonces({ secret: randomBytes(32) });
  const replay = new MemoryStore();
  const keys = new JwksCache({
    jwksUri: opts.jwksUri,
    fetch: (url, init) => fetch(url, init as RequestInit),
  });
  const verifier = jwtAccessTokenVerifier({
    issuer: opts.issuer,
    audience: opts.audience,
    keys,
    algorithms: ['PS256', 'ES256'],
  });
  let port = 0;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const record: DpopSeen = {
        method: req.method ?? '',
        path: req.url ?? '',
        scheme: req.headers.authorization?.split(' ')[0],
        hadProof: typeof req.headers.dpop === 'string',
        status: 0,
        body,
      };
      seen.push(record);
      validateDpopRequest(
        {
          method: req.method ?? 'GET',
          url: `http://127.0.0.1:${port}${req.url ?? '/'}`,
          authorization: req.headers.authorization,
          dpop: req.headers.dpop,
        },
        {
          verifier,
          proofAlgorithms: ['ES256', 'PS256'],
          replay,
          events: { failure() {} },
          ...(opts.requireNonce === false ? {} : { nonces }),
        },
      ).then(
        ({ claims, jkt }) => {
          record.status = 200;
          res.writeHead(200, {
            'content-type': 'application/json',
            ...(opts.requireNonce === false ? {} : { 'dpop-nonce': nonces.current() }),
          });
          res.end(JSON.stringify({ sub: claims.sub, jkt, body }));
        },
        (err: unknown) => {
          const e = err instanceof BffError ? err : undefined;
          record.status = 401;
          if (e?.reason) record.reason = e.reason;
          res.writeHead(e ? 401 : 500, { 'content-type': 'application/json', ...(e?.headers ?? {}) });
          res.end(JSON.stringify({ error: e?.reason ?? 'error' }));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    /** A new nonce secret: every nonce handed out so far stops working (forces a challenge). */
    rotateNonces() {
      nonces = new DpopNonces({ secret: randomBytes(32) });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await replay.close();
      keys.stop();
    },
  };
}

export type DpopUpstream = Awaited<ReturnType<typeof startDpopUpstream>>;

export interface DpopStack {
  readonly idp: DevIdp;
  readonly bff: RunningBff;
  readonly upstream: DpopUpstream;
  close(): Promise<void>;
}

/**
 * DPoP end to end: the development IdP with the BFF registered as a client whose access tokens are
 * DPoP-bound and that must use server nonces (RFC 9449 §8,
 * https://www.rfc-editor.org/rfc/rfc9449#section-8), a resource server enforcing DPoP for
 * `audience`, and a BFF with DPoP on whose routes (`routes`, given that server's URL) lead to it.
 */
export async function startDpopStack(opts: {
  clientId: string;
  audience: string;
  /** Extra client metadata (merged over clientMetadata()). */
  client?: Record<string, unknown>;
  /** Options of the IdP besides `clients` and `dpop`. */
  idp?: Omit<DevIdpOptions, 'clients' | 'dpop'>;
  routes: (upstreamUrl: string) => Record<string, unknown>;
}): Promise<DpopStack> {
  const port = await freePort();
  const key = await makeClientKey('ES256');
  const idp = await startDevIdp({
    ...opts.idp,
    clients: [
      {
        ...clientMetadata(opts.clientId, `http://127.0.0.1:${port}`, key),
        ...opts.client,
        dpop_bound_access_tokens: true,
      },
    ],
    dpop: { requireNonce: true },
  });
  let upstream: DpopUpstream | undefined;
  let bff: RunningBff | undefined;
  const close = async () => {
    await bff?.close();
    await upstream?.close();
    await idp.close();
  };
  try {
    upstream = await startDpopUpstream({
      issuer: idp.issuer,
      jwksUri: `${idp.issuer}/jwks`,
      audience: opts.audience,
    });
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: opts.clientId,
      key,
      env: { MS_BFF_DPOP_ENABLED: 'true' },
      routes: opts.routes(upstream.url),
    });
  } catch (err) {
    await close();
    throw err;
  }
  return { idp, bff, upstream, close };
}

/** The resource server accepted exactly `count` requests, each with a DPoP-bound token and a proof. */
export function assertAcceptedWithProof(upstream: DpopUpstream, count: number): void {
  const accepted = upstream.seen.filter((s) => s.status === 200);
  assert.equal(accepted.length, count);
  for (const s of accepted) {
    assert.equal(s.scheme, 'DPoP');
    assert.equal(s.hadProof, true);
  }
}
