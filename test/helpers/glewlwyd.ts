/**
 * Glewlwyd (https://github.com/babelouest/glewlwyd), a second, independently written OAuth 2.0 /
 * OpenID Connect server, run as a child process on a free loopback port with its own sqlite database
 * and provisioned only through its admin REST API (/api/mod/plugin, /api/scope, /api/user,
 * /api/client), as an operator would. Installed from Debian (`apt-get install glewlwyd sqlite3`).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { freePort } from './bff-harness.js';
import type { TestBrowser } from './test-browser.js';

const BINARY = '/usr/bin/glewlwyd';
/** The Debian package's full sqlite schema (core and every plugin), with the admin user. */
const SCHEMA = '/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3';
const MODULES = '/usr/lib/glewlwyd';
const WEBAPP = '/usr/share/glewlwyd/webapp';
/** The schema's stock administrator (docs/GETTING_STARTED.md): changed nowhere, the server is ours alone. */
const ADMIN = { username: 'admin', password: 'password' };
export const GLEWLWYD_USER = { username: 'alice', password: 'alice-password' } as const;
export const GLEWLWYD_SCOPES = 'openid profile email offline_access';

/** Why Glewlwyd cannot run here, or undefined when it can. */
export function glewlwydUnavailable(): string | undefined {
  if (!existsSync(BINARY)) return `${BINARY} is missing (apt-get install glewlwyd)`;
  if (!existsSync(SCHEMA)) return `${SCHEMA} is missing (the glewlwyd Debian package ships it)`;
  if (spawnSync('sqlite3', ['-version']).status !== 0) return 'sqlite3 is missing (apt-get install sqlite3)';
  return undefined;
}

export interface GlewlwydClient {
  client_id: string;
  [property: string]: unknown;
}

export interface Glewlwyd {
  origin: string;
  issuer: string;
  /** The server's own log (console mode), for diagnosing a failed test. */
  logFile: string;
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  addClient(client: GlewlwydClient): Promise<void>;
  updateClient(client: GlewlwydClient): Promise<void>;
  /** Sign the user in (POST /api/auth/) in `browser`'s jar and grant `clientId` the scopes. */
  signIn(browser: TestBrowser, clientId: string, scopes?: string): Promise<void>;
  close(): Promise<void>;
}

async function waitFor(check: () => Promise<boolean>, what: string, attempts = 100, delayMs = 100) {
  for (let i = 0; i < attempts; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, delayMs));
  }
  throw new Error(`glewlwyd: timed out waiting for ${what}`);
}

function glewlwydConf(port: number, origin: string, database: string): string {
  // libconfig syntax (https://github.com/babelouest/glewlwyd/blob/master/src/glewlwyd.conf.sample).
  return `port=${port}
bind_address="127.0.0.1"
external_url="${origin}"
login_url="login.html"
static_files_path="${WEBAPP}/"
api_prefix="api"
allow_origin="*"
log_mode="console"
log_level="DEBUG"
cookie_secure=0
session_expiration=2419200
session_key="GLEWLWYD2_SESSION_ID"
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="${MODULES}/user"
client_module_path="${MODULES}/client"
user_auth_scheme_module_path="${MODULES}/scheme"
plugin_module_path="${MODULES}/plugin"
hash_algorithm="SHA512"
database = { type = "sqlite3"; path = "${database}"; };
static_files_mime_types = (
  { extension = ".html"; mime_type = "text/html"; },
  { extension = ".js"; mime_type = "application/javascript"; },
  { extension = ".json"; mime_type = "application/json"; },
  { extension = ".css"; mime_type = "text/css"; },
  { extension = ".png"; mime_type = "image/png"; }
)
`;
}

/** The OIDC plugin parameters (docs/OIDC.md): code flow with PAR, PKCE, DPoP, JAR, JARM, rotation, logout. */
function oidcPlugin(issuer: string, privateJwks: string, kid: string): Record<string, unknown> {
  return {
    module: 'oidc',
    name: 'oidc',
    display_name: 'OpenID Connect',
    enabled: true,
    parameters: {
      iss: issuer,
      'jwks-private': privateJwks,
      'default-kid': kid,
      'jwks-show': true,
      'access-token-duration': 3600,
      'refresh-token-duration': 86400,
      'code-duration': 600,
      'refresh-token-rolling': true,
      'refresh-token-one-use': 'always',
      'allow-non-oidc': false,
      'auth-type-code-enabled': true,
      'auth-type-code-revoke-replayed': true,
      'auth-type-refresh-enabled': true,
      'auth-type-token-enabled': false,
      'auth-type-id-token-enabled': false,
      'auth-type-password-enabled': false,
      'auth-type-client-enabled': false,
      'auth-type-device-enabled': false,
      'auth-type-none-enabled': false,
      'oauth-fapi-allow-jarm': true,
      'oauth-par-allowed': true,
      'oauth-par-required': false,
      'oauth-par-duration': 90,
      'oauth-par-request_uri-prefix': 'urn:ietf:params:oauth:request_uri:',
      'oauth-dpop-allowed': true,
      'oauth-dpop-iat-duration': 60,
      'pkce-allowed': true,
      'pkce-method-plain-allowed': false,
      'request-parameter-allow': true,
      'client-pubkey-parameter': 'pubkey',
      'client-jwks-parameter': 'jwks',
      'client-jwks_uri-parameter': 'jwks_uri',
      'client-alg-parameter': 'alg',
      'client-enc-parameter': 'enc',
      'session-management-allowed': true,
      'session-cookie-name': 'GLEWLWYD_OIDC_SID',
      'session-cookie-expiration': 3600,
      'back-channel-logout-allowed': true,
      'front-channel-logout-allowed': false,
      'introspection-revocation-allowed': true,
      'introspection-revocation-auth-scope': [],
      'introspection-revocation-allow-target-client': true,
      'subject-type': 'public',
      scope: [],
      claims: [],
      'name-claim': 'on-demand',
      'email-claim': 'on-demand',
      'encrypt-out-token-allow': false,
      // RFC 9207 iss in authorization responses (off by default; never advertised in discovery).
      'oauth-as-iss-id': true,
    },
  };
}

export async function startGlewlwyd(): Promise<Glewlwyd> {
  const unavailable = glewlwydUnavailable();
  if (unavailable) throw new Error(unavailable);
  const dir = mkdtempSync(join(tmpdir(), 'glewlwyd-'));
  const database = join(dir, 'glewlwyd.db');
  const init = spawnSync('sqlite3', [database], { input: readFileSync(SCHEMA) });
  if (init.status !== 0) throw new Error(`glewlwyd: sqlite3 init failed: ${init.stderr.toString()}`);
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const issuer = `${origin}/api/oidc`;
  writeFileSync(join(dir, 'glewlwyd.conf'), glewlwydConf(port, origin, database));
  const logFile = join(dir, 'glewlwyd.log');
  const out = openSync(logFile, 'a');
  const child: ChildProcess = spawn(BINARY, [`--config-file=${join(dir, 'glewlwyd.conf')}`], {
    stdio: ['ignore', out, out],
  });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });

  let cookie = '';
  const api = (method: string, path: string, body?: unknown, extra: Record<string, string> = {}) =>
    fetch(`${origin}/api${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(cookie ? { cookie } : {}),
        ...extra,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
  const must = async (what: string, res: Promise<Response>) => {
    const r = await res;
    if (!r.ok) throw new Error(`glewlwyd: ${what}: ${r.status} ${await r.text()}`);
    await r.body?.cancel();
  };

  const close = async () => {
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
      if (!exited) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(async () => {
      if (exited) throw new Error(`glewlwyd exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
      const r = await api('POST', '/auth/', ADMIN);
      const set = r.headers.get('set-cookie');
      await r.body?.cancel();
      if (r.status !== 200 || !set) return false;
      cookie = set.split(';')[0] ?? '';
      return true;
    }, 'the admin login');

    // The IdP's signing key: PS256, the FAPI 2.0 alg the BFF pins for ID tokens by default.
    const { privateKey } = await generateKeyPair('PS256', { extractable: true, modulusLength: 2048 });
    const kid = `glewlwyd-${randomBytes(4).toString('hex')}`;
    const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'PS256', use: 'sig' };
    await must(
      'create the oidc plugin',
      api('POST', '/mod/plugin', oidcPlugin(issuer, JSON.stringify({ keys: [jwk] }), kid)),
    );
    // The stock client data-format lacks post_logout_redirect_uris, the array end_session compares
    // post_logout_redirect_uri with (callback_oidc_end_session): declare it, as an operator must.
    const clientModule = await api('GET', '/mod/client/database');
    const moduleBody = (await clientModule.json()) as {
      parameters: { 'data-format': Record<string, unknown> };
    };
    moduleBody.parameters['data-format'].post_logout_redirect_uris = {
      multiple: true,
      read: true,
      write: true,
    };
    await must('declare post_logout_redirect_uris', api('PUT', '/mod/client/database', moduleBody));
    await must('reload the client module', api('PUT', '/mod/client/database/reset'));
    for (const name of ['profile', 'email', 'offline_access']) {
      await must(
        `create scope ${name}`,
        api('POST', '/scope', { name, display_name: name, password_required: false, scope: [] }),
      );
    }
    await must(
      'create the user',
      api('POST', '/user', {
        username: GLEWLWYD_USER.username,
        password: GLEWLWYD_USER.password,
        name: 'Alice',
        email: 'alice@example.test',
        enabled: true,
        // g_profile: the consent API (PUT /api/auth/grant) is part of the user's profile API.
        scope: [...GLEWLWYD_SCOPES.split(' '), 'g_profile'],
      }),
    );
    await waitFor(async () => {
      const r = await fetch(`${issuer}/.well-known/openid-configuration`);
      await r.body?.cancel();
      return r.ok;
    }, 'the discovery document');
  } catch (err) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-3000) : '';
    await close();
    throw new Error(`${(err as Error).message}\n--- glewlwyd log ---\n${log}`, { cause: err });
  }

  return {
    origin,
    issuer,
    logFile,
    admin: (method, path, body) => api(method, path, body),
    async addClient(client) {
      await must(
        `create client ${client.client_id}`,
        api('POST', '/client', { confidential: true, enabled: true, name: client.client_id, ...client }),
      );
    },
    async updateClient(client) {
      await must(
        `update client ${client.client_id}`,
        api('PUT', `/client/${encodeURIComponent(client.client_id)}`, {
          confidential: true,
          enabled: true,
          name: client.client_id,
          ...client,
        }),
      );
    },
    async signIn(browser, clientId, scopes = GLEWLWYD_SCOPES) {
      const login = await browser.request(`${origin}/api/auth/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(GLEWLWYD_USER),
      });
      if (login.status !== 200) throw new Error(`glewlwyd: sign-in: ${login.status} ${await login.text()}`);
      // Consent, as the login page's "grant" step does. API.md says the list is comma separated; the
      // server splits it on spaces (set_granted_scopes_for_client, src/scope.c).
      const grant = await browser.request(`${origin}/api/auth/grant/${encodeURIComponent(clientId)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ scope: scopes }),
      });
      if (grant.status !== 200) throw new Error(`glewlwyd: grant: ${grant.status} ${await grant.text()}`);
    },
    close,
  };
}

/** The client properties that register a BFF at `publicUrl` (database client module, docs/CLIENT_DATABASE.md). */
export function glewlwydClient(
  clientId: string,
  publicUrl: string,
  auth: { method: 'private_key_jwt' } | { method: 'client_secret_basic'; secret: string },
  extra: Record<string, unknown> = {},
): GlewlwydClient {
  return {
    client_id: clientId,
    redirect_uri: [`${publicUrl}/auth/callback`],
    authorization_type: ['code', 'refresh_token'],
    scope: GLEWLWYD_SCOPES.split(' '),
    token_endpoint_auth_method: [auth.method],
    ...(auth.method === 'client_secret_basic'
      ? { client_secret: auth.secret }
      : { jwks_uri: `${publicUrl}/.well-known/jwks.json` }),
    // end_session reads post_logout_redirect_uris (an array); startGlewlwyd declares it multiple.
    post_logout_redirect_uris: [`${publicUrl}/`],
    backchannel_logout_uri: `${publicUrl}/auth/backchannel-logout`,
    backchannel_logout_session_required: '1',
    ...extra,
  };
}

/**
 * Glewlwyd's authorization endpoint always sends the browser to its login page first; the page's
 * "continue" button goes back to `callback_url` with `g_continue` (validate_endpoint_auth,
 * src/plugin/protocol_oidc.c). With a signed-in, consenting user that is all the page does.
 */
export function continueUrl(loginPage: URL): URL {
  const callback = loginPage.searchParams.get('callback_url');
  if (!callback) throw new Error(`glewlwyd: no callback_url on ${loginPage.href}`);
  const next = new URL(callback);
  next.searchParams.set('g_continue', '');
  return next;
}

/** A signed-in login through the BFF up to (not including) the BFF callback request. */
export async function loginUntilCallback(
  glw: Glewlwyd,
  browser: TestBrowser,
  bffUrl: string,
  clientId: string,
  returnTo = '/after',
): Promise<{ url: URL; pending?: { method: string; body?: string | URLSearchParams } }> {
  await glw.signIn(browser, clientId);
  const isCallback = (u: URL) => u.href.startsWith(`${bffUrl}/auth/callback`);
  const start = await browser.navigate(`${bffUrl}/auth/login?returnTo=${encodeURIComponent(returnTo)}`, {
    stopWhen: (u) => isCallback(u) || u.pathname.endsWith('/login.html'),
  });
  if (!start.stopped) {
    throw new Error(
      `glewlwyd login: ${start.response.status} at ${start.url}: ${await start.response.text()}`,
    );
  }
  if (isCallback(start.url)) return { url: start.url, ...(start.pending ? { pending: start.pending } : {}) };
  const done = await browser.navigate(continueUrl(start.url), { stopWhen: isCallback });
  if (!done.stopped) {
    throw new Error(
      `glewlwyd continue: ${done.response.status} at ${done.url}: ${await done.response.text()}`,
    );
  }
  return { url: done.url, ...(done.pending ? { pending: done.pending } : {}) };
}
