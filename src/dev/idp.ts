/**
 * An embedded FAPI 2.0 identity provider for development (`npm start` without `OIDC_ISSUER`) and for
 * the test suite. It is the real `oidc-provider`, configured the way a FAPI 2.0 authorization server
 * must behave (PAR, PKCE S256, `iss` in the authorization response, PS256 signatures), with minimal
 * login and consent pages of its own. Never expose it beyond loopback: it has hard-coded users.
 *
 * @see https://openid.net/specs/fapi-security-profile-2_0-final.html §5.3.2 (authorization server)
 */
import { createHash, randomBytes, timingSafeEqual, type X509Certificate } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { debuglog } from 'node:util';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type {
  Account,
  ClientMetadata,
  Configuration,
  default as OidcProvider,
  Interaction,
  JWKS,
  KoaContextWithOIDC,
  ResourceServer,
} from 'oidc-provider';

export interface DevIdpUser {
  id: string;
  username: string;
  password: string;
  claims: Record<string, unknown>;
}

export interface DevIdpOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  /** oidc-provider client metadata, passed through unchanged. */
  clients: Record<string, unknown>[];
  /** Default: alice / 'alice-password'. */
  users?: DevIdpUser[];
  /** Default 300. */
  accessTokenTtlSec?: number;
  /** Wraps the IdP's HTTP handler (tests: delay or observe responses, e.g. a slow token endpoint). */
  wrapHandler?: (
    handler: (req: IncomingMessage, res: ServerResponse) => void,
  ) => (req: IncomingMessage, res: ServerResponse) => void;
  /** Default 86400. Also the IdP session and grant lifetime. */
  refreshTokenTtlSec?: number;
  /** Default true: `pushedAuthorizationRequests.requirePushedAuthorizationRequests`. */
  requirePar?: boolean;
  /**
   * When set, access tokens are JWTs (RFC 9068) with this audience, via resource indicators
   * (`defaultResource` + `useGrantedResource`). Must be an absolute URI (RFC 8707 §2).
   */
  resourceAudience?: string;
  /** Scopes the resource server defines (space separated); default 'api:read'. Only with resourceAudience. */
  resourceScope?: string;
  /** Clients (protected resources, e.g. the BFF) allowed to introspect other clients' tokens (RFC 7662 §2.1). */
  introspectors?: string[];
  /** DPoP (RFC 9449): require server nonces at PAR and token (default false). */
  dpop?: { requireNonce?: boolean };
  /** Enable JWE: encrypted request objects and encrypted JARM responses (the IdP gets enc keys). */
  encryption?: boolean;
  /** Default 'auto': first-party consent granted right after login. 'form' shows a consent page. */
  consent?: 'auto' | 'form';
  /**
   * Serve over HTTPS (issuer `https://<host>:<port>`) with this PEM certificate and key. Client
   * certificates are requested but not required (`requestCert: true, rejectUnauthorized: false`);
   * `ca` (PEM) decides whether a presented one counts as verified (`tls_client_auth`).
   */
  tls?: { cert: string; key: string; ca: string };
  /**
   * RFC 8705 mutual TLS (needs `tls`). A second HTTPS port serves the mTLS endpoint aliases (token,
   * PAR, revocation, introspection, userinfo), advertised as `mtls_endpoint_aliases`; introspection
   * is enabled too. Client certificates count only on that port unless `certificatesOnIssuerPort`,
   * so a client that calls the issuer's own token or PAR endpoint with mTLS auth or binding fails,
   * as the FAPI conformance suite fails it (RFC 8705 §5; FAPI2-CLIENT-CHECKLIST SP-N6, SP-C7).
   */
  mtls?: {
    tlsClientAuth?: boolean;
    selfSignedTlsClientAuth?: boolean;
    certificateBoundAccessTokens?: boolean;
    /** Default false: also accept client certificates presented on the issuer's port. */
    certificatesOnIssuerPort?: boolean;
  };
  /** Called for every request the IdP receives, on either port (e.g. to prove a client used the aliases). */
  onRequest?: (request: DevIdpRequest) => void;
}

/** What `onRequest` reports. */
export interface DevIdpRequest {
  /** The origin of the port it arrived on: the issuer's, or `mtlsOrigin`. */
  origin: string;
  method: string;
  /** Path and query. */
  url: string;
  /** True when it arrived on the mTLS alias port. */
  mtlsAlias: boolean;
  /** True when the TLS client presented a certificate on this connection. */
  clientCertificate: boolean;
}

export interface DevIdp {
  issuer: string;
  provider: OidcProvider;
  /** With `mtls`: the origin of the mTLS alias port, e.g. `https://127.0.0.1:40123`. */
  mtlsOrigin?: string;
  /** With `mtls`: the advertised `mtls_endpoint_aliases` (RFC 8705 §5). */
  mtlsEndpointAliases?: Readonly<Record<MtlsAliasedEndpoint, string>>;
  close(): Promise<void>;
}

export const DEFAULT_DEV_USERS: readonly DevIdpUser[] = Object.freeze([
  {
    id: 'alice',
    username: 'alice',
    password: 'alice-password',
    claims: {
      name: 'Alice Example',
      given_name: 'Alice',
      family_name: 'Example',
      preferred_username: 'alice',
      email: 'alice@example.com',
      email_verified: true,
    },
  },
]);

const log = debuglog('fapi-bff:dev-idp');
const TITLE = 'fapi-bff development IdP';
/** Only FAPI 2.0 algorithms (FAPI 2.0 Security Profile §5.4: PS256, ES256, EdDSA). */
const SIGNING_ALGS = ['PS256', 'ES256'] as const;
const MAX_FORM_BYTES = 16 * 1024;
const INTERACTION_PATH = /^\/interaction\/([A-Za-z0-9_-]{1,64})(?:\/(login|confirm|abort))?$/;
const STYLESHEET_PATH = '/dev-idp.css';
/**
 * Our pages load nothing but the stylesheet and run no script. No `form-action`: browsers apply it
 * to the redirect chain after a form post too, which would block the way back to the client.
 */
const PAGE_CSP = "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/**
 * Warnings oidc-provider prints that are expected here: Node 20 is below its preferred runtime, and
 * the in-memory adapter is deliberate for a development IdP. Routed to NODE_DEBUG=fapi-bff:dev-idp.
 */
const EXPECTED_WARNINGS = [/Unsupported runtime/, /in-memory adapter/];

function filterExpectedWarnings(): () => void {
  const original = console.warn;
  console.warn = (...args: unknown[]) => {
    const text = args.map(String).join(' ');
    if (EXPECTED_WARNINGS.some((re) => re.test(text))) log('%s', text);
    else original.apply(console, args);
  };
  return () => {
    console.warn = original;
  };
}

// eslint-disable-next-line @typescript-eslint/consistent-type-imports -- a type-only view of a lazily imported module (loaded on demand to keep its runtime warning out of non-dev starts)
type OidcProviderModule = typeof import('oidc-provider');
let oidcProviderModule: Promise<OidcProviderModule> | undefined;

/** oidc-provider warns about the runtime while its module evaluates, so it is loaded lazily. */
function loadOidcProvider(): Promise<OidcProviderModule> {
  if (!oidcProviderModule) {
    const restore = filterExpectedWarnings();
    oidcProviderModule = import('oidc-provider').finally(restore);
  }
  return oidcProviderModule;
}

async function signingKeys(withEncryption: boolean): Promise<JWKS> {
  const keys: JWK[] = [];
  for (const alg of SIGNING_ALGS) {
    const { privateKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
    const jwk = await exportJWK(privateKey);
    keys.push({ ...jwk, alg, use: 'sig', kid: await calculateJwkThumbprint(jwk) });
  }
  // Decryption keys for encrypted request objects (RFC 9101 §6.1): the client encrypts to these.
  if (withEncryption) {
    for (const alg of ['RSA-OAEP-256', 'ECDH-ES'] as const) {
      const { privateKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
      const jwk = await exportJWK(privateKey);
      keys.push({ ...jwk, alg, use: 'enc', kid: await calculateJwkThumbprint(jwk) });
    }
  }
  return { keys } as JWKS;
}

/** Strong JWE algorithms only (seed 002 §1, §2: pinned strong alg/enc). */
const ENCRYPTION_ALGS = ['RSA-OAEP-256', 'ECDH-ES', 'ECDH-ES+A256KW'] as const;
const ENCRYPTION_ENCS = ['A256GCM', 'A256CBC-HS512'] as const;

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * oidc-provider guards its outgoing fetch (back-channel logout, client jwks_uri) with a dispatcher
 * that refuses loopback and private addresses against SSRF. Development clients live on loopback,
 * so only for loopback URLs is the guard dropped; every other destination keeps it.
 */
function loopbackFriendlyFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const url = new URL(input instanceof Request ? input.url : input);
  if (init && isLoopbackHost(url.hostname)) {
    const { dispatcher: _guard, ...rest } = init as RequestInit & { dispatcher?: unknown };
    return fetch(input, rest);
  }
  return fetch(input, init);
}

/**
 * The endpoints served on the mTLS alias port, with oidc-provider's route names and default paths
 * (the dev IdP does not change `routes`; startup checks the paths against the provider).
 */
const MTLS_ALIASED_ROUTES = {
  token_endpoint: { route: 'token', path: '/token' },
  pushed_authorization_request_endpoint: { route: 'pushed_authorization_request', path: '/request' },
  revocation_endpoint: { route: 'revocation', path: '/token/revocation' },
  introspection_endpoint: { route: 'introspection', path: '/token/introspection' },
  userinfo_endpoint: { route: 'userinfo', path: '/me' },
} as const;

export type MtlsAliasedEndpoint = keyof typeof MTLS_ALIASED_ROUTES;

function originOf(protocol: 'http' | 'https', host: string, port: number): string {
  return `${protocol}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function peerCertificate(socket: Socket | undefined): X509Certificate | undefined {
  const tls = socket as Partial<TLSSocket> | undefined;
  if (typeof tls?.getPeerX509Certificate !== 'function') return undefined;
  return tls.getPeerX509Certificate() ?? undefined;
}

/** An RFC 4514 DN as a list of `TYPE=value` RDNs: attribute types upper-cased, spaces trimmed. */
function normalizeDn(rdns: string[]): string[] {
  return rdns.map((rdn) => {
    const eq = rdn.indexOf('=');
    return eq < 0 ? rdn.trim() : `${rdn.slice(0, eq).trim().toUpperCase()}=${rdn.slice(eq + 1).trim()}`;
  });
}

/** Splits an RFC 4514 string at unescaped commas. */
function splitRfc4514(dn: string): string[] {
  const out: string[] = [];
  let current = '';
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i];
    if (c === '\\' && i + 1 < dn.length) {
      current += c + dn[i + 1];
      i++;
    } else if (c === ',') {
      out.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  out.push(current);
  return out;
}

/**
 * RFC 8705 §2.1.2: does the certificate match the registered `tls_client_auth_*` value? The subject
 * DN is compared as RFC 4514 (most specific RDN first); Node lists the RDNs in certificate order.
 */
function certificateMatches(cert: X509Certificate, property: string, expected: string): boolean {
  if (property === 'tls_client_auth_subject_dn') {
    const actual = normalizeDn(cert.subject.split('\n').reverse());
    const wanted = normalizeDn(splitRfc4514(expected));
    return actual.length === wanted.length && actual.every((rdn, i) => rdn === wanted[i]);
  }
  const prefix = {
    tls_client_auth_san_dns: 'DNS:',
    tls_client_auth_san_ip: 'IP Address:',
    tls_client_auth_san_email: 'email:',
    tls_client_auth_san_uri: 'URI:',
  }[property];
  if (!prefix || !cert.subjectAltName) return false;
  return cert.subjectAltName.split(', ').some((entry) => entry === `${prefix}${expected}`);
}

function escapeHtml(value: unknown): string {
  return String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

function page(heading: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(heading)} - ${TITLE}</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
<p class="banner" role="alert"><strong>Development only.</strong> This is the ${TITLE}: fixed test users, in-memory state, no real security. Never use it in production.</p>
<main>
<h1>${escapeHtml(heading)}</h1>
${body}
</main>
</body>
</html>
`;
}

const STYLESHEET = `body{font-family:system-ui,sans-serif;margin:0;color:#222}
.banner{margin:0;padding:.75rem 1rem;background:#b00020;color:#fff}
main{max-width:28rem;margin:2rem auto;padding:0 1rem}
label{display:block;margin:.75rem 0 .25rem}
input[type=text],input[type=password]{width:100%;padding:.4rem;box-sizing:border-box}
button{margin:1rem .5rem 0 0;padding:.4rem 1rem}
.error{color:#b00020;font-weight:bold}
code{background:#eee;padding:0 .2rem}
`;

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Security-Policy': PAGE_CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  });
  res.end(html);
}

function loginPage(uid: string, clientId: string, error?: string, username = ''): string {
  return page(
    'Sign in',
    `<p>Signing in to <code>${escapeHtml(clientId)}</code>.</p>
${error ? `<p class="error" id="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="username">Username</label>
<input id="username" name="username" type="text" value="${escapeHtml(username)}" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="sign-in">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
<button type="submit" id="cancel">Cancel</button>
</form>`,
  );
}

function consentPage(uid: string, clientId: string, scope: string): string {
  const items = scope
    .split(' ')
    .filter(Boolean)
    .map((s) => `<li><code>${escapeHtml(s)}</code></li>`)
    .join('');
  return page(
    'Allow access?',
    `<p><code>${escapeHtml(clientId)}</code> asks for:</p>
<ul>${items}</ul>
<form method="post" action="/interaction/${escapeHtml(uid)}/confirm">
<button type="submit" id="allow">Allow</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
<button type="submit" id="deny">Deny</button>
</form>`,
  );
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) return new URLSearchParams();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new HttpError(413, 'The form is too large.');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Compares digests so the comparison time does not depend on where the strings differ. */
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** The details oidc-provider computes for the consent prompt (its default interaction policy). */
interface ConsentDetails {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
}

interface InteractionContext {
  provider: OidcProvider;
  users: readonly DevIdpUser[];
  consentMode: 'auto' | 'form';
}

async function grantConsent({ provider }: InteractionContext, details: Interaction): Promise<string> {
  const accountId = details.session?.accountId;
  const clientId = details.params.client_id;
  if (!accountId || typeof clientId !== 'string') throw new HttpError(400, 'No signed-in user.');
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId });
  if (!grant) throw new HttpError(400, 'The grant expired.');
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt
    .details as ConsentDetails;
  if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  return grant.save();
}

async function finishConsent(
  ctx: InteractionContext,
  req: IncomingMessage,
  res: ServerResponse,
  details: Interaction,
): Promise<void> {
  const grantId = await grantConsent(ctx, details);
  // A new grant's id is handed back; an existing one was updated in place.
  const consent = details.grantId ? {} : { grantId };
  await ctx.provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

/** Our login and consent pages, driven by oidc-provider's interaction API. */
async function handleInteraction(
  ctx: InteractionContext,
  req: IncomingMessage,
  res: ServerResponse,
  uid: string,
  action: string | undefined,
): Promise<void> {
  const { provider, users } = ctx;
  const details = await provider.interactionDetails(req, res);
  // The interaction cookie decides the interaction; a URL naming another one is refused.
  if (details.uid !== uid) throw new HttpError(400, 'This page belongs to another sign-in attempt.');
  const clientId = String(details.params.client_id ?? '');
  const prompt = details.prompt.name;

  if (req.method === 'GET' && action === undefined) {
    if (prompt === 'login') {
      sendHtml(res, 200, loginPage(uid, clientId));
    } else if (prompt === 'consent' && ctx.consentMode === 'auto') {
      await finishConsent(ctx, req, res, details);
    } else if (prompt === 'consent') {
      sendHtml(res, 200, consentPage(uid, clientId, String(details.params.scope ?? '')));
    } else {
      throw new HttpError(400, `Unsupported prompt: ${prompt}`);
    }
    return;
  }
  if (req.method !== 'POST' || action === undefined) throw new HttpError(405, 'Method not allowed.');

  const form = await readForm(req);
  if (action === 'abort') {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
  } else if (action === 'login' && prompt === 'login') {
    const username = form.get('username') ?? '';
    const password = form.get('password') ?? '';
    const user = users.find((u) => u.username === username);
    // Check a password even for unknown users, so both failures take the same time.
    const ok = sameSecret(password, user?.password ?? randomBytes(16).toString('hex')) && user !== undefined;
    if (!ok) {
      sendHtml(res, 200, loginPage(uid, clientId, 'Invalid username or password.', username));
      return;
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.id, amr: ['pwd'] } },
      { mergeWithLastSubmission: false },
    );
  } else if (action === 'confirm' && prompt === 'consent') {
    await finishConsent(ctx, req, res, details);
  } else {
    throw new HttpError(400, 'This step does not match the sign-in state.');
  }
}

/**
 * Starts the IdP on `http://<host>:<port>`. The provider is constructed after `listen`, because the
 * issuer (and so every URL in discovery) must carry the real ephemeral port.
 */
export async function startDevIdp(options: DevIdpOptions): Promise<DevIdp> {
  const host = options.host ?? '127.0.0.1';
  const users = options.users ?? DEFAULT_DEV_USERS;
  const accessTokenTtl = options.accessTokenTtlSec ?? 300;
  const refreshTokenTtl = options.refreshTokenTtlSec ?? 86_400;
  const consentMode = options.consent ?? 'auto';
  if (options.mtls && !options.tls) throw new Error('dev IdP: the mtls option needs the tls option');
  const { default: Provider, errors } = await loadOidcProvider();
  const jwks = await signingKeys(options.encryption ?? false);

  let provider: OidcProvider | undefined;
  let providerCallback: ((req: IncomingMessage, res: ServerResponse) => unknown) | undefined;

  const report = (req: IncomingMessage, mtlsAlias: boolean): void => {
    if (!options.onRequest) return;
    options.onRequest({
      origin: originOf(options.tls ? 'https' : 'http', host, req.socket.localPort ?? 0),
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      mtlsAlias,
      clientCertificate: peerCertificate(req.socket) !== undefined,
    });
  };

  const baseHandler = (req: IncomingMessage, res: ServerResponse): void => {
    report(req, false);
    if (!provider || !providerCallback) {
      res.writeHead(503).end();
      return;
    }
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const match = INTERACTION_PATH.exec(path);
    if (path === STYLESHEET_PATH && req.method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'no-cache' });
      res.end(STYLESHEET);
    } else if (match) {
      handleInteraction({ provider, users, consentMode }, req, res, match[1] ?? '', match[2]).catch(
        (err: unknown) => {
          const status =
            err instanceof HttpError ? err.status : err instanceof errors.SessionNotFound ? 400 : 500;
          if (status === 500) console.error('dev IdP interaction failed', err);
          if (res.headersSent) {
            res.destroy();
            return;
          }
          const message =
            err instanceof HttpError
              ? err.message
              : status === 400
                ? 'This sign-in attempt expired or does not belong to this browser. Start again from the application.'
                : 'Internal error.';
          sendHtml(
            res,
            status,
            page('Cannot continue', `<p class="error" id="error">${escapeHtml(message)}</p>`),
          );
        },
      );
    } else {
      providerCallback(req, res);
    }
  };

  const handler = options.wrapHandler ? options.wrapHandler(baseHandler) : baseHandler;

  // RFC 8705: client certificates are asked for but not required at the TLS layer. A self-signed
  // one (self_signed_tls_client_auth) must get through, and `ca` only decides `socket.authorized`.
  const tlsOptions = options.tls && {
    cert: options.tls.cert,
    key: options.tls.key,
    ca: options.tls.ca,
    requestCert: true,
    rejectUnauthorized: false,
  };
  // An https.Server has every http.Server method used here (listen, address, close, closeAllConnections).
  const server: Server = tlsOptions
    ? (createHttpsServer(tlsOptions, handler) as unknown as Server)
    : createServer(handler);

  // The mTLS alias port (RFC 8705 §5) serves only the aliased endpoints, from the same provider.
  const aliasPaths = new Set<string>(Object.values(MTLS_ALIASED_ROUTES).map((r) => r.path));
  const aliasSockets = new WeakSet<Socket>();
  const aliasServer: Server | undefined =
    tlsOptions && options.mtls
      ? (createHttpsServer(tlsOptions, (req, res) => {
          report(req, true);
          const path = (req.url ?? '/').split('?')[0] ?? '/';
          if (!provider || !providerCallback) res.writeHead(503).end();
          else if (!aliasPaths.has(path)) res.writeHead(404).end();
          else {
            aliasSockets.add(req.socket);
            providerCallback(req, res);
          }
        }) as unknown as Server)
      : undefined;
  const servers = aliasServer ? [server, aliasServer] : [server];

  const listen = (s: Server, port: number) =>
    new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, host, () => {
        s.off('error', reject);
        resolve();
      });
    });
  const close = async (): Promise<void> => {
    await Promise.all(
      servers.map(async (s) => {
        if (!s.listening) return;
        // closeAllConnections drops keep-alive sockets that would otherwise hold close() open.
        const closed = new Promise<void>((resolve) => s.close(() => resolve()));
        s.closeAllConnections();
        await closed;
      }),
    );
  };

  await listen(server, options.port ?? 0);
  try {
    if (aliasServer) await listen(aliasServer, 0);
  } catch (err) {
    await close();
    throw err;
  }

  try {
    const { port } = server.address() as AddressInfo;
    const issuer = originOf(tlsOptions ? 'https' : 'http', host, port);
    const mtlsOrigin = aliasServer
      ? originOf('https', host, (aliasServer.address() as AddressInfo).port)
      : undefined;
    const mtlsEndpointAliases = mtlsOrigin
      ? (Object.fromEntries(
          Object.entries(MTLS_ALIASED_ROUTES).map(([name, { path }]) => [name, `${mtlsOrigin}${path}`]),
        ) as Record<MtlsAliasedEndpoint, string>)
      : undefined;
    const mtlsCertificate = (ctx: KoaContextWithOIDC): X509Certificate | undefined => {
      const socket = ctx.req.socket;
      if (!options.mtls?.certificatesOnIssuerPort && !aliasSockets.has(socket)) return undefined;
      return peerCertificate(socket);
    };

    const findUser = (id: string) => users.find((u) => u.id === id);

    const resourceScope = options.resourceScope ?? 'api:read';
    const resourceIndicators: NonNullable<Configuration['features']>['resourceIndicators'] =
      options.resourceAudience === undefined
        ? { enabled: false }
        : {
            enabled: true,
            defaultResource: (_ctx, _client, oneOf) => oneOf ?? options.resourceAudience,
            // The access token goes to the API even though `openid` was asked for: the BFF takes
            // user claims from the ID token, not from userinfo.
            useGrantedResource: () => true,
            getResourceServerInfo: (_ctx, resourceIndicator): ResourceServer => {
              if (resourceIndicator !== options.resourceAudience) throw new errors.InvalidTarget();
              return {
                scope: resourceScope,
                audience: options.resourceAudience,
                accessTokenTTL: accessTokenTtl,
                accessTokenFormat: 'jwt',
                jwt: { sign: { alg: 'PS256' } },
              };
            },
          };

    const configuration: Configuration = {
      clients: options.clients as unknown as ClientMetadata[],
      jwks,
      cookies: {
        keys: [randomBytes(32).toString('base64url')],
        // Distinct names: on 127.0.0.1 a browser shares cookies between ports, so the IdP's
        // cookies must not collide with the BFF's.
        names: { session: 'devidp_session', interaction: 'devidp_interaction', resume: 'devidp_resume' },
      },
      clientDefaults: {
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'private_key_jwt',
        id_token_signed_response_alg: 'PS256',
        authorization_signed_response_alg: 'PS256',
      },
      enabledJWA: {
        clientAuthSigningAlgValues: [...SIGNING_ALGS],
        idTokenSigningAlgValues: [...SIGNING_ALGS],
        requestObjectSigningAlgValues: [...SIGNING_ALGS],
        userinfoSigningAlgValues: [...SIGNING_ALGS],
        introspectionSigningAlgValues: [...SIGNING_ALGS],
        authorizationSigningAlgValues: [...SIGNING_ALGS],
        dPoPSigningAlgValues: ['ES256', 'PS256'],
        authorizationEncryptionAlgValues: [...ENCRYPTION_ALGS],
        authorizationEncryptionEncValues: [...ENCRYPTION_ENCS],
        requestObjectEncryptionAlgValues: [...ENCRYPTION_ALGS],
        requestObjectEncryptionEncValues: [...ENCRYPTION_ENCS],
      },
      claims: {
        acr: null,
        sid: null,
        auth_time: null,
        iss: null,
        openid: ['sub'],
        profile: ['name', 'given_name', 'family_name', 'preferred_username', 'updated_at'],
        email: ['email', 'email_verified'],
      },
      scopes: ['openid', 'offline_access', 'profile', 'email'],
      // FAPI 2.0 Security Profile §5.3.2.2: only the authorization code flow.
      responseTypes: ['code'],
      // Confidential clients only. client_secret_* stay available for the BFF's non-production modes.
      clientAuthMethods: [
        'private_key_jwt',
        'client_secret_basic',
        'client_secret_post',
        ...(options.mtls?.tlsClientAuth ? (['tls_client_auth'] as const) : []),
        ...(options.mtls?.selfSignedTlsClientAuth ? (['self_signed_tls_client_auth'] as const) : []),
      ],
      ...(mtlsEndpointAliases ? { discovery: { mtls_endpoint_aliases: mtlsEndpointAliases } } : {}),
      // Scope-requested claims go into the ID token too, not only to userinfo (OIDC Core §5.4 allows
      // both): the BFF builds its session from the ID token.
      conformIdTokenClaims: false,
      findAccount: (_ctx, sub): Account | undefined => {
        const user = findUser(sub);
        if (!user) return undefined;
        return { accountId: user.id, claims: () => ({ ...user.claims, sub: user.id }) };
      },
      features: {
        fapi: { enabled: true, profile: '2.0' },
        devInteractions: { enabled: false },
        pushedAuthorizationRequests: {
          enabled: true,
          requirePushedAuthorizationRequests: options.requirePar ?? true,
        },
        requestObjects: { enabled: true, requireSignedRequestObject: false },
        jwtResponseModes: { enabled: true },
        encryption: { enabled: options.encryption ?? false },
        // RFC 9449 §8: with requireNonce, every first PAR and token call gets 400 use_dpop_nonce.
        dPoP: {
          enabled: true,
          nonceSecret: randomBytes(32),
          requireNonce: () => options.dpop?.requireNonce ?? false,
        },
        revocation: {
          enabled: true,
          // Only the client a token was issued to may revoke it (RFC 7009 §2.1).
          allowedPolicy: (_ctx, client, token) => {
            if (token.clientId !== client.clientId) {
              throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
            }
            return true;
          },
        },
        userinfo: { enabled: true },
        rpInitiatedLogout: {
          enabled: true,
          logoutSource: (ctx: KoaContextWithOIDC, form: string) => {
            const withButtons = form.replace(
              '</form>',
              '<button type="submit" name="logout" value="yes" id="logout-yes">Yes, sign me out</button>' +
                '<button type="submit" id="logout-no">No, stay signed in</button></form>',
            );
            ctx.type = 'html';
            ctx.set('Content-Security-Policy', PAGE_CSP);
            ctx.body = page('Sign out?', `<p>Do you want to sign out of the ${TITLE}?</p>${withButtons}`);
          },
          postLogoutSuccessSource: (ctx: KoaContextWithOIDC) => {
            ctx.type = 'html';
            ctx.set('Content-Security-Policy', PAGE_CSP);
            ctx.body = page('Signed out', '<p id="signed-out">You are signed out.</p>');
          },
        },
        backchannelLogout: { enabled: true },
        resourceIndicators,
        // RFC 8705; off (oidc-provider's default) without the mtls option.
        mTLS: options.mtls
          ? {
              enabled: true,
              tlsClientAuth: options.mtls.tlsClientAuth ?? false,
              selfSignedTlsClientAuth: options.mtls.selfSignedTlsClientAuth ?? false,
              certificateBoundAccessTokens: options.mtls.certificateBoundAccessTokens ?? false,
              // PEM of the certificate presented on this connection (on the alias port only, unless
              // certificatesOnIssuerPort); undefined when none was.
              getCertificate: (ctx) => mtlsCertificate(ctx)?.toString(),
              // Chains to `tls.ca`: Node's TLS layer checked it against the server's `ca`.
              certificateAuthorized: (ctx) =>
                mtlsCertificate(ctx) !== undefined && (ctx.req.socket as TLSSocket).authorized,
              certificateSubjectMatches: (ctx, property, expected) => {
                const cert = mtlsCertificate(ctx);
                return cert !== undefined && certificateMatches(cert, property, expected);
              },
            }
          : { enabled: false },
        // Only with mtls (so the aliases cover it). RFC 7662 §2.1: the protected resource introspects
        // tokens issued to other clients; `introspectors` names the resource clients allowed to.
        introspection: {
          enabled: options.mtls !== undefined,
          allowedPolicy: (_ctx, client, token) =>
            token.clientId === client.clientId || (options.introspectors ?? []).includes(client.clientId),
        },
      },
      renderError: (ctx, out) => {
        ctx.type = 'html';
        ctx.set('Content-Security-Policy', PAGE_CSP);
        const rows = Object.entries(out)
          .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd><code>${escapeHtml(v)}</code></dd>`)
          .join('');
        ctx.body = page('Error', `<dl id="error">${rows}</dl>`);
      },
      pkce: {
        // FAPI 2.0 Security Profile §5.3.2.2: PKCE with S256 for every request; oidc-provider 9 knows
        // no other method.
        required: () => true,
      },
      issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
      // FAPI 2.0 Security Profile §5.3.2.1 advises against rotation, but many IdPs rotate anyway and
      // the BFF must cope, so the dev IdP always rotates (and revokes the grant on reuse).
      rotateRefreshToken: true,
      ttl: {
        AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
        AuthorizationCode: 60,
        ClientCredentials: accessTokenTtl,
        IdToken: 600,
        Interaction: 600,
        RefreshToken: refreshTokenTtl,
        Session: refreshTokenTtl,
        Grant: refreshTokenTtl,
        BackchannelAuthenticationRequest: 600,
        DeviceCode: 600,
      },
      fetch: loopbackFriendlyFetch,
    };

    const restore = filterExpectedWarnings();
    try {
      provider = new Provider(issuer, configuration);
    } finally {
      restore();
    }
    provider.on('server_error', (_ctx: unknown, err: unknown) => console.error('dev IdP server_error', err));
    provider.on('backchannel.error', (_ctx: unknown, err: unknown) =>
      log('back-channel logout failed: %o', err),
    );

    // Static client metadata is validated only at first use; fail at startup with a clear message.
    for (const metadata of options.clients) {
      const id = String(metadata.client_id);
      try {
        if (!(await provider.Client.find(id))) throw new Error('not found');
      } catch (err) {
        const detail = (err as { error_description?: string }).error_description ?? (err as Error).message;
        throw new Error(`dev IdP: invalid metadata for client ${JSON.stringify(id)}: ${detail}`, {
          cause: err,
        });
      }
    }

    // The alias paths above are oidc-provider's default routes; make sure they still are.
    for (const { route, path } of Object.values(MTLS_ALIASED_ROUTES)) {
      if (aliasServer && provider.pathFor(route) !== path) {
        throw new Error(`dev IdP: oidc-provider serves ${route} at ${provider.pathFor(route)}, not ${path}`);
      }
    }

    providerCallback = provider.callback();
    return {
      issuer,
      provider,
      close,
      ...(mtlsOrigin && mtlsEndpointAliases ? { mtlsOrigin, mtlsEndpointAliases } : {}),
    };
  } catch (err) {
    await close();
    throw err;
  }
}
