// A deliberately misbehaving OpenID Provider for tests of IdP faults that a correct provider (we also test
// against the real oidc-provider) never produces: bad signatures, wrong `iss`, wrong nonce/aud/alg, replays…
//
// With no misbehaviour set it is a strict-enough FAPI 2.0 provider (PAR required, PKCE S256, RFC 9207 `iss`,
// private_key_jwt or client_secret_basic, optional DPoP, single-use codes and request_uris, rotating refresh
// tokens) that a strict client completes a login against it. Each knob then changes exactly one thing, so a
// failing negative test points at the one check the client is missing.
//
// All JOSE work goes through `jose`; the only other primitives are node:crypto's random bytes, SHA-256 for the
// PKCE S256 transform and a constant-time compare for the client secret.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  base64url,
  type CryptoKey,
  calculateJwkThumbprint,
  createLocalJWKSet,
  EmbeddedJWK,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JSONWebKeySet,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
  jwtVerify,
  SignJWT,
  UnsecuredJWT,
} from 'jose';

export interface Misbehaviour {
  // discovery
  metadataIssuer?: string; // `issuer` in the discovery document differs from the real issuer
  omitMetadata?: string[]; // remove these metadata keys (e.g. 'pushed_authorization_request_endpoint')
  overrideMetadata?: Record<string, unknown>;
  // authorization response (the /authorize redirect back to the client)
  authzIss?: string | null; // iss parameter value; null = omit it (RFC 9207)
  authzState?: string; // replace the state
  authzError?: { error: string; error_description?: string }; // redirect with an error instead of a code
  // token endpoint / ID token
  idTokenNonce?: string | null; // replace nonce; null = omit (authorization_code grant only)
  idTokenAud?: string | string[];
  idTokenAzp?: string;
  idTokenIss?: string;
  idTokenAlg?: 'RS256' | 'none' | 'HS256' | 'ES256' | 'PS256'; // RS256 re-uses the published RSA key material
  idTokenBadSignature?: boolean; // flip bytes in the signature
  idTokenExp?: number; // absolute seconds
  idTokenIat?: number; // absolute seconds
  idTokenSub?: string; // authorization_code grant; the refresh token remembers the sub it was issued with
  idTokenKid?: string; // kid header value (e.g. unknown)
  idTokenHeader?: Record<string, unknown>; // extra protected header members (jku, x5u, typ…), signed over
  idTokenSignWithUnpublishedKey?: boolean; // valid-looking signature by a key not in the JWKS (same kid)
  tokenType?: string; // token_type in the token response (default 'Bearer', or 'DPoP' with a DPoP proof)
  tokenStatus?: number; // make the token endpoint return this HTTP status with an OAuth error body
  tokenError?: string; // error code for that body (default 'invalid_grant'); alone it implies status 400
  accessTokenTtlSec?: number; // expires_in of issued access tokens (default: the start option, else 300)
  refreshIdTokenSub?: string; // on refresh, issue an ID token with this sub
  parStatus?: number; // PAR returns this status with an OAuth error body
  down?: boolean; // every endpoint destroys the socket (IdP "down")
}

export interface RecordedRequest {
  path: string; // pathname only; the query string is in `query`
  method: string;
  headers: Record<string, string | string[] | undefined>;
  query?: Record<string, string>;
  form?: Record<string, string>;
}

export interface HostileIdp {
  issuer: string; // http://127.0.0.1:<port>
  misbehave(m: Misbehaviour): void; // replaces the current misbehaviour (empty object = behave)
  requests: RecordedRequest[]; // every request received, oldest first
  issuedCodes: string[];
  /**
   * Sign any payload with the IdP's published key for `alg` (or an unpublished one with the same
   * kid), for JWTs the IdP sends outside a flow: logout tokens, JARM responses. `header` is merged
   * into the protected header (to set typ, kid, crit, jku…).
   */
  signJwt(
    payload: Record<string, unknown>,
    opts?: { alg?: 'PS256' | 'ES256' | 'RS256'; header?: Record<string, unknown>; unpublishedKey?: boolean },
  ): Promise<string>;
  close(): Promise<void>;
}

export interface HostileIdpOptions {
  clientId: string;
  clientJwks?: { keys: object[] }; // enables private_key_jwt (and verifies JAR request objects)
  clientSecret?: string; // enables client_secret_basic
  redirectUris: string[];
  alg?: 'PS256' | 'ES256'; // default ID token signing alg
  accessTokenTtlSec?: number;
}

type SigningAlg = 'PS256' | 'ES256' | 'RS256';
interface SigningKey {
  kid: string;
  key: CryptoKey;
}

interface PushedRequest {
  params: Record<string, string>;
  dpopJkt: string | undefined;
  expiresAt: number;
}
interface Grant {
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  scope: string;
  nonce: string | undefined;
  dpopJkt: string | undefined;
  authTime: number;
  sid: string;
  expiresAt: number;
}
interface RefreshGrant {
  clientId: string;
  scope: string;
  sub: string;
  authTime: number;
  sid: string;
}

const SUBJECT = 'hostile-user';
const ID_TOKEN_TTL_SEC = 300;
const PAR_TTL_SEC = 60;
const CODE_TTL_SEC = 60;
const MAX_BODY_BYTES = 64 * 1024;
const CLOCK_TOLERANCE_SEC = 30;
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const JWS_ALGS = ['PS256', 'ES256'];
// RFC 7636 §4.1: 43–128 characters from the unreserved set.
const PKCE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
const PKCE_CHALLENGE = /^[A-Za-z0-9\-_]{43}$/;
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${error}: ${description}`);
  }
}

const now = (): number => Math.floor(Date.now() / 1000);
const random = (bytes = 32): string => randomBytes(bytes).toString('base64url');

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    // RFC 6749 §5.1: token responses must not be cached; harmless on the others.
    'cache-control': 'no-store',
    pragma: 'no-cache',
    ...headers,
  });
  res.end(payload);
}

function sendHtml(res: ServerResponse, status: number, text: string) {
  const escaped = text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const payload = `<!doctype html><title>hostile-idp</title><p>${escaped}</p>`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
  });
  res.end(payload);
}

function sendError(res: ServerResponse, err: OAuthError) {
  sendJson(res, err.status, { error: err.error, error_description: err.description }, err.headers);
}

// Reads the whole body even past the limit (discarding the excess) so that the 413 actually reaches the
// client: abandoning the stream would destroy the socket under it. The server's requestTimeout bounds this.
function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.once('error', reject);
    req.once('end', () => {
      if (size > MAX_BODY_BYTES) reject(new OAuthError(413, 'invalid_request', 'request body too large'));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

// RFC 6749 §3.1 / §3.2: parameters must not be repeated, and an empty value counts as absent.
function toRecord(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of params) {
    if (Object.hasOwn(out, key)) throw new OAuthError(400, 'invalid_request', `parameter "${key}" repeated`);
    if (value !== '') out[key] = value;
  }
  return out;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  if (Array.isArray(value)) throw new OAuthError(400, 'invalid_request', `header "${name}" repeated`);
  return value;
}

function sameSecret(a: string, b: string): boolean {
  // Hash first so timingSafeEqual gets equal lengths and the length of the secret does not leak.
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

// RFC 6749 §2.3.1: client_id and secret are form-urlencoded before being joined and base64-encoded.
function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

function stripPrivate(jwk: object): JWK {
  const copy: Record<string, unknown> = { ...jwk };
  for (const member of PRIVATE_JWK_MEMBERS) delete copy[member];
  return copy as JWK;
}

async function newSigningKey(alg: SigningAlg): Promise<{ kid: string; key: CryptoKey; publicJwk: JWK }> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, key: privateKey, publicJwk: { ...publicJwk, kid, use: 'sig', alg } };
}

export async function startHostileIdp(opts: HostileIdpOptions): Promise<HostileIdp> {
  const { clientId } = opts;
  const redirectUris = new Set(opts.redirectUris);
  const defaultAlg = opts.alg ?? 'PS256';
  if (!opts.clientJwks && opts.clientSecret === undefined) {
    throw new TypeError('startHostileIdp needs clientJwks and/or clientSecret to authenticate the client');
  }
  const clientKeys = opts.clientJwks
    ? createLocalJWKSet({ keys: opts.clientJwks.keys.map(stripPrivate) } as JSONWebKeySet)
    : undefined;

  const rsa = await newSigningKey('PS256');
  const ec = await newSigningKey('ES256');
  // RS256 needs an RSASSA-PKCS1-v1_5 CryptoKey; import the same RSA material so only the alg differs.
  const rsaJwk = await exportJWK(rsa.key);
  const rs256: SigningKey = {
    kid: rsa.kid,
    key: (await importJWK({ ...rsaJwk, alg: 'RS256' }, 'RS256')) as CryptoKey,
  };
  const published: Record<SigningAlg, SigningKey> = { PS256: rsa, ES256: ec, RS256: rs256 };
  const jwks = { keys: [rsa.publicJwk, ec.publicJwk] };
  const unpublished = new Map<SigningAlg, SigningKey>(); // generated on first use; never in the JWKS

  let misbehaviour: Misbehaviour = {};
  const requests: RecordedRequest[] = [];
  const issuedCodes: string[] = [];
  const pushed = new Map<string, PushedRequest>();
  const codes = new Map<string, Grant>();
  const usedCodes = new Set<string>();
  const refreshTokens = new Map<string, RefreshGrant>();
  const accessTokens = new Set<string>();
  const seenJtis = new Map<string, number>(); // jti → expiry, for assertion and DPoP proof replay detection

  let issuer = '';
  const endpoint = (path: string) => `${issuer}${path}`;

  function rememberJti(kind: string, jti: unknown, exp: number) {
    if (typeof jti !== 'string' || jti === '')
      throw new OAuthError(400, 'invalid_request', `${kind} jti missing`);
    const t = now();
    for (const [key, expiry] of seenJtis) if (expiry < t) seenJtis.delete(key);
    const key = `${kind}:${jti}`;
    if (seenJtis.has(key)) throw new OAuthError(400, 'invalid_request', `${kind} replayed`);
    seenJtis.set(key, exp);
  }

  function metadata(m: Misbehaviour): Record<string, unknown> {
    const doc: Record<string, unknown> = {
      issuer,
      authorization_endpoint: endpoint('/authorize'),
      token_endpoint: endpoint('/token'),
      pushed_authorization_request_endpoint: endpoint('/par'),
      require_pushed_authorization_requests: true,
      jwks_uri: endpoint('/jwks'),
      revocation_endpoint: endpoint('/revoke'),
      end_session_endpoint: endpoint('/end_session'),
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
      token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic'],
      token_endpoint_auth_signing_alg_values_supported: JWS_ALGS,
      id_token_signing_alg_values_supported: JWS_ALGS,
      request_object_signing_alg_values_supported: JWS_ALGS,
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      dpop_signing_alg_values_supported: ['ES256', 'PS256'],
      subject_types_supported: ['public'],
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'sid', 'azp'],
    };
    if (m.metadataIssuer !== undefined) doc.issuer = m.metadataIssuer;
    for (const key of m.omitMetadata ?? []) delete doc[key];
    return { ...doc, ...m.overrideMetadata };
  }

  // Client authentication as advertised: private_key_jwt (aud = issuer string, FAPI 2.0) or client_secret_basic,
  // exactly one method per request (RFC 6749 §2.3).
  async function authenticateClient(req: IncomingMessage, form: Record<string, string>): Promise<void> {
    const authorization = header(req, 'authorization');
    const basic = authorization?.match(/^basic\s+(\S+)$/i);
    const hasAssertion = form.client_assertion !== undefined || form.client_assertion_type !== undefined;
    if (form.client_secret !== undefined) {
      throw new OAuthError(401, 'invalid_client', 'client_secret_post is not supported');
    }
    if (basic && hasAssertion)
      throw new OAuthError(400, 'invalid_request', 'more than one client authentication');

    if (basic) {
      const challenge = { 'www-authenticate': 'Basic realm="hostile-idp", error="invalid_client"' };
      if (opts.clientSecret === undefined) {
        throw new OAuthError(401, 'invalid_client', 'client_secret_basic not enabled', challenge);
      }
      let id: string;
      let secret: string;
      try {
        const decoded = Buffer.from(basic[1] ?? '', 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) throw new Error('no colon');
        id = formDecode(decoded.slice(0, colon));
        secret = formDecode(decoded.slice(colon + 1));
      } catch {
        throw new OAuthError(401, 'invalid_client', 'malformed Basic credentials', challenge);
      }
      if (id !== clientId || !sameSecret(secret, opts.clientSecret)) {
        throw new OAuthError(401, 'invalid_client', 'client authentication failed', challenge);
      }
      if (form.client_id !== undefined && form.client_id !== clientId) {
        throw new OAuthError(400, 'invalid_request', 'client_id does not match the authenticated client');
      }
      return;
    }

    if (hasAssertion) {
      if (!clientKeys) throw new OAuthError(401, 'invalid_client', 'private_key_jwt not enabled');
      if (form.client_assertion_type !== CLIENT_ASSERTION_TYPE || form.client_assertion === undefined) {
        throw new OAuthError(401, 'invalid_client', 'unsupported client_assertion_type');
      }
      if (form.client_id !== undefined && form.client_id !== clientId) {
        throw new OAuthError(401, 'invalid_client', 'client_id does not match');
      }
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(form.client_assertion, clientKeys, {
          issuer: clientId,
          subject: clientId,
          algorithms: JWS_ALGS,
          requiredClaims: ['exp', 'jti', 'aud'],
          clockTolerance: CLOCK_TOLERANCE_SEC,
        }));
      } catch (err) {
        throw new OAuthError(401, 'invalid_client', `client assertion rejected: ${(err as Error).message}`);
      }
      // FAPI 2.0 §5.3.2.1: the audience is the issuer identifier, as a single string value.
      if (payload.aud !== issuer) {
        throw new OAuthError(401, 'invalid_client', 'client assertion aud must be the issuer identifier');
      }
      try {
        rememberJti('client_assertion', payload.jti, payload.exp ?? now());
      } catch (err) {
        throw new OAuthError(401, 'invalid_client', (err as Error).message);
      }
      return;
    }
    throw new OAuthError(401, 'invalid_client', 'client authentication required');
  }

  // RFC 9449 §4.3. Returns the JWK thumbprint of the proof key, or undefined when no proof was sent.
  async function verifyDpop(req: IncomingMessage, path: string): Promise<string | undefined> {
    const proof = header(req, 'dpop');
    if (proof === undefined) return undefined;
    try {
      const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: ['ES256', 'PS256'],
        requiredClaims: ['iat', 'jti', 'htm', 'htu'],
      });
      if (payload.htm !== req.method) throw new Error('htm mismatch');
      const htu = new URL(String(payload.htu));
      htu.search = '';
      htu.hash = '';
      if (htu.href !== endpoint(path)) throw new Error('htu mismatch');
      const iat = payload.iat ?? 0;
      if (Math.abs(iat - now()) > CLOCK_TOLERANCE_SEC) throw new Error('iat out of window');
      rememberJti('dpop', payload.jti, iat + 2 * CLOCK_TOLERANCE_SEC);
      if (!protectedHeader.jwk) throw new Error('jwk missing');
      return await calculateJwkThumbprint(protectedHeader.jwk);
    } catch (err) {
      throw new OAuthError(400, 'invalid_dpop_proof', (err as Error).message);
    }
  }

  async function signingKey(alg: SigningAlg, unpublishedKey: boolean): Promise<SigningKey> {
    const real = published[alg];
    if (!unpublishedKey) return real;
    let other = unpublished.get(alg);
    if (!other) {
      other = { kid: real.kid, key: (await newSigningKey(alg)).key };
      unpublished.set(alg, other);
    }
    return other;
  }

  async function mintIdToken(
    m: Misbehaviour,
    claims: { sub: string; nonce: string | undefined; authTime: number; sid: string },
  ): Promise<string> {
    const t = now();
    const payload: JWTPayload = {
      iss: m.idTokenIss ?? issuer,
      sub: claims.sub,
      aud: m.idTokenAud ?? clientId,
      exp: m.idTokenExp ?? t + ID_TOKEN_TTL_SEC,
      iat: m.idTokenIat ?? t,
      auth_time: claims.authTime,
      sid: claims.sid,
    };
    if (claims.nonce !== undefined) payload.nonce = claims.nonce;
    if (m.idTokenAzp !== undefined) payload.azp = m.idTokenAzp;

    const alg = m.idTokenAlg ?? defaultAlg;
    let jwt: string;
    if (alg === 'none') {
      jwt = new UnsecuredJWT(payload).encode();
    } else if (alg === 'HS256') {
      // The classic alg-confusion attack: a MAC keyed with something public (the client_id).
      const kid = m.idTokenKid === undefined ? {} : { kid: m.idTokenKid };
      jwt = await new SignJWT(payload)
        .setProtectedHeader({ alg, ...kid })
        .sign(new TextEncoder().encode(clientId));
    } else {
      const key = await signingKey(alg, m.idTokenSignWithUnpublishedKey === true);
      jwt = await new SignJWT(payload)
        .setProtectedHeader({ alg, kid: m.idTokenKid ?? key.kid, ...m.idTokenHeader } as JWTHeaderParameters)
        .sign(key.key);
    }
    if (m.idTokenBadSignature) {
      const [h, p, s] = jwt.split('.');
      const sig = base64url.decode(s ?? '');
      if (sig.length > 0) {
        sig[0] = (sig[0] ?? 0) ^ 0xff;
        sig[sig.length - 1] = (sig[sig.length - 1] ?? 0) ^ 0xff;
      }
      jwt = `${h}.${p}.${base64url.encode(sig)}`;
    }
    return jwt;
  }

  async function handlePar(req: IncomingMessage, res: ServerResponse, form: Record<string, string>) {
    const m = misbehaviour;
    if (m.parStatus !== undefined) {
      const error = m.parStatus >= 500 ? 'server_error' : 'invalid_request';
      throw new OAuthError(m.parStatus, error, 'hostile-idp: parStatus misbehaviour');
    }
    await authenticateClient(req, form);
    const dpopJkt = await verifyDpop(req, '/par');
    if (form.request_uri !== undefined)
      throw new OAuthError(400, 'invalid_request', 'request_uri not allowed at PAR');

    let params = form;
    if (form.request !== undefined) {
      params = await requestObjectParams(form.request);
    }
    if (params.client_id !== undefined && params.client_id !== clientId) {
      throw new OAuthError(400, 'invalid_request', 'client_id mismatch');
    }
    if (params.response_type !== 'code') throw new OAuthError(400, 'unsupported_response_type', 'only code');
    // JARM modes are accepted but answered in plain query: JARM tests wrap the code and state
    // themselves (signJwt), breaking one rule at a time.
    const modes = ['query', 'jwt', 'query.jwt', 'fragment.jwt', 'form_post.jwt'];
    if (params.response_mode !== undefined && !modes.includes(params.response_mode)) {
      throw new OAuthError(400, 'invalid_request', 'unsupported response_mode');
    }
    if (params.redirect_uri === undefined || !redirectUris.has(params.redirect_uri)) {
      throw new OAuthError(400, 'invalid_request', 'redirect_uri missing or not registered');
    }
    if (params.code_challenge_method !== 'S256') {
      throw new OAuthError(400, 'invalid_request', 'code_challenge_method must be S256');
    }
    if (params.code_challenge === undefined || !PKCE_CHALLENGE.test(params.code_challenge)) {
      throw new OAuthError(400, 'invalid_request', 'code_challenge missing or malformed');
    }
    if (params.dpop_jkt !== undefined && dpopJkt !== undefined && params.dpop_jkt !== dpopJkt) {
      throw new OAuthError(400, 'invalid_dpop_proof', 'dpop_jkt does not match the DPoP proof key');
    }
    const requestUri = `urn:ietf:params:oauth:request_uri:${random()}`;
    pushed.set(requestUri, {
      params: { ...params, client_id: clientId },
      dpopJkt: params.dpop_jkt ?? dpopJkt,
      expiresAt: now() + PAR_TTL_SEC,
    });
    sendJson(res, 201, { request_uri: requestUri, expires_in: PAR_TTL_SEC });
  }

  // RFC 9101 (JAR) inside PAR: the signed request object replaces the form parameters.
  async function requestObjectParams(requestObject: string): Promise<Record<string, string>> {
    if (!clientKeys) throw new OAuthError(400, 'invalid_request_object', 'no client keys to verify it with');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(requestObject, clientKeys, {
        issuer: clientId,
        audience: issuer,
        algorithms: JWS_ALGS,
        requiredClaims: ['exp'],
        clockTolerance: CLOCK_TOLERANCE_SEC,
      }));
    } catch (err) {
      throw new OAuthError(400, 'invalid_request_object', (err as Error).message);
    }
    const params: Record<string, string> = {};
    for (const [key, value] of Object.entries(payload)) {
      if (['iss', 'aud', 'exp', 'iat', 'nbf', 'jti'].includes(key)) continue;
      if (typeof value === 'string') params[key] = value;
      else if (typeof value === 'number') params[key] = String(value);
      else params[key] = JSON.stringify(value);
    }
    return params;
  }

  function handleAuthorize(res: ServerResponse, query: Record<string, string>) {
    const m = misbehaviour;
    const requestUri = query.request_uri;
    if (requestUri === undefined) {
      sendHtml(res, 400, 'invalid_request: pushed authorization requests are required');
      return;
    }
    const entry = pushed.get(requestUri);
    pushed.delete(requestUri); // single use, whatever happens next
    if (!entry || entry.expiresAt < now()) {
      sendHtml(res, 400, 'invalid_request_uri: unknown, used or expired request_uri');
      return;
    }
    if (query.client_id !== clientId) {
      sendHtml(res, 400, 'invalid_request: client_id missing or does not match the pushed request');
      return;
    }
    const { params } = entry;
    const redirectUri = params.redirect_uri ?? '';
    const location = new URL(redirectUri);
    const response = new URLSearchParams();
    if (m.authzError) {
      response.set('error', m.authzError.error);
      if (m.authzError.error_description !== undefined) {
        response.set('error_description', m.authzError.error_description);
      }
    } else {
      const code = random();
      issuedCodes.push(code);
      codes.set(code, {
        clientId,
        redirectUri,
        codeChallenge: params.code_challenge ?? '',
        scope: params.scope ?? '',
        nonce: params.nonce,
        dpopJkt: entry.dpopJkt,
        authTime: now(),
        sid: random(16),
        expiresAt: now() + CODE_TTL_SEC,
      });
      response.set('code', code);
    }
    const state = m.authzState ?? params.state;
    if (state !== undefined) response.set('state', state);
    const iss = m.authzIss === undefined ? issuer : m.authzIss;
    if (iss !== null) response.set('iss', iss);
    for (const [key, value] of response) location.searchParams.append(key, value);
    res.writeHead(302, { location: location.href, 'cache-control': 'no-store', 'content-length': 0 });
    res.end();
  }

  async function handleToken(req: IncomingMessage, res: ServerResponse, form: Record<string, string>) {
    const m = misbehaviour;
    if (m.tokenStatus !== undefined || m.tokenError !== undefined) {
      throw new OAuthError(
        m.tokenStatus ?? 400,
        m.tokenError ?? 'invalid_grant',
        'hostile-idp: token misbehaviour',
      );
    }
    await authenticateClient(req, form);
    const dpopJkt = await verifyDpop(req, '/token');
    const t = now();
    let scope: string;
    let idToken: string | undefined;
    let refresh: RefreshGrant;

    if (form.grant_type === 'authorization_code') {
      const code = form.code ?? '';
      const grant = codes.get(code);
      codes.delete(code);
      if (!grant || usedCodes.has(code))
        throw new OAuthError(400, 'invalid_grant', 'unknown or already used code');
      usedCodes.add(code);
      if (grant.expiresAt < t) throw new OAuthError(400, 'invalid_grant', 'code expired');
      if (grant.clientId !== clientId)
        throw new OAuthError(400, 'invalid_grant', 'code issued to another client');
      if (form.redirect_uri !== grant.redirectUri)
        throw new OAuthError(400, 'invalid_grant', 'redirect_uri mismatch');
      const verifier = form.code_verifier;
      if (verifier === undefined || !PKCE_VERIFIER.test(verifier) || s256(verifier) !== grant.codeChallenge) {
        throw new OAuthError(400, 'invalid_grant', 'PKCE verification failed');
      }
      if (grant.dpopJkt !== undefined && grant.dpopJkt !== dpopJkt) {
        throw new OAuthError(400, 'invalid_grant', 'DPoP key does not match the one bound at authorization');
      }
      scope = grant.scope;
      const sub = m.idTokenSub ?? SUBJECT;
      if (scope.split(' ').includes('openid')) {
        const nonce = m.idTokenNonce === undefined ? grant.nonce : (m.idTokenNonce ?? undefined);
        idToken = await mintIdToken(m, { sub, nonce, authTime: grant.authTime, sid: grant.sid });
      }
      refresh = { clientId, scope, sub, authTime: grant.authTime, sid: grant.sid };
    } else if (form.grant_type === 'refresh_token') {
      const old = refreshTokens.get(form.refresh_token ?? '');
      if (!old || old.clientId !== clientId)
        throw new OAuthError(400, 'invalid_grant', 'unknown refresh token');
      refreshTokens.delete(form.refresh_token ?? ''); // rotation: the presented token is now spent
      scope = old.scope;
      if (form.scope !== undefined) {
        const granted = new Set(old.scope.split(' '));
        if (!form.scope.split(' ').every((s) => granted.has(s))) {
          throw new OAuthError(400, 'invalid_scope', 'scope exceeds the original grant');
        }
        scope = form.scope;
      }
      if (scope.split(' ').includes('openid')) {
        // OIDC Core §12.2: same sub as the original ID token, and no nonce.
        const sub = m.refreshIdTokenSub ?? old.sub;
        idToken = await mintIdToken(m, { sub, nonce: undefined, authTime: old.authTime, sid: old.sid });
      }
      refresh = old;
    } else {
      throw new OAuthError(400, 'unsupported_grant_type', 'only authorization_code and refresh_token');
    }

    const accessToken = random();
    accessTokens.add(accessToken);
    const refreshToken = random();
    refreshTokens.set(refreshToken, refresh);
    const body: Record<string, unknown> = {
      access_token: accessToken,
      token_type: m.tokenType ?? (dpopJkt ? 'DPoP' : 'Bearer'),
      expires_in: m.accessTokenTtlSec ?? opts.accessTokenTtlSec ?? 300,
      refresh_token: refreshToken,
      scope,
    };
    if (idToken !== undefined) body.id_token = idToken;
    sendJson(res, 200, body);
  }

  async function handleRevoke(req: IncomingMessage, res: ServerResponse, form: Record<string, string>) {
    await authenticateClient(req, form);
    if (form.token === undefined) throw new OAuthError(400, 'invalid_request', 'token missing');
    // RFC 7009 §2.2: unknown tokens are not an error.
    refreshTokens.delete(form.token);
    accessTokens.delete(form.token);
    res.writeHead(200, { 'content-length': 0, 'cache-control': 'no-store' });
    res.end();
  }

  async function handle(req: IncomingMessage, res: ServerResponse, record: RecordedRequest) {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const query = toRecord(url.searchParams);
    record.query = query;
    const route = `${req.method} ${url.pathname}`;

    let form: Record<string, string> = {};
    if (req.method === 'POST') {
      const type = (header(req, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase();
      const body = await readBody(req);
      if (type !== 'application/x-www-form-urlencoded') {
        throw new OAuthError(400, 'invalid_request', 'expected application/x-www-form-urlencoded');
      }
      const params = new URLSearchParams(body);
      record.form = Object.fromEntries(params);
      form = toRecord(params);
    }

    switch (route) {
      case 'GET /.well-known/openid-configuration':
        return sendJson(res, 200, metadata(misbehaviour), { 'cache-control': 'no-cache' });
      case 'GET /jwks':
        return sendJson(res, 200, jwks, { 'cache-control': 'no-cache' });
      case 'POST /par':
        return handlePar(req, res, form);
      case 'GET /authorize':
        return handleAuthorize(res, query);
      case 'POST /token':
        return handleToken(req, res, form);
      case 'POST /revoke':
        return handleRevoke(req, res, form);
      case 'GET /end_session':
      case 'POST /end_session':
        return sendHtml(res, 200, 'You have been signed out.');
      default:
        throw new OAuthError(404, 'not_found', route);
    }
  }

  const sockets = new Set<Socket>();
  const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    const record: RecordedRequest = {
      path: (req.url ?? '/').split('?')[0] ?? '/',
      method: req.method ?? '',
      headers: { ...req.headers },
    };
    requests.push(record);
    if (misbehaviour.down) {
      req.socket.destroy();
      return;
    }
    handle(req, res, record).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // A body we stopped reading would otherwise be parsed as the next request on this connection.
      res.setHeader('connection', 'close');
      if (err instanceof OAuthError) sendError(res, err);
      else sendJson(res, 500, { error: 'server_error', error_description: String(err) });
    });
  });
  server.keepAliveTimeout = 2_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Malformed HTTP must not crash the process; there is no request to answer, so just drop the connection.
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  let closing: Promise<void> | undefined;
  return {
    issuer,
    misbehave(m: Misbehaviour) {
      misbehaviour = { ...m };
    },
    requests,
    issuedCodes,
    async signJwt(payload, opts = {}) {
      const alg = opts.alg ?? defaultAlg;
      const key = await signingKey(alg, opts.unpublishedKey ?? false);
      return new SignJWT(payload as JWTPayload)
        .setProtectedHeader({ alg, kid: key.kid, ...opts.header } as JWTHeaderParameters)
        .sign(key.key);
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}
