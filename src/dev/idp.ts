/**
 * An embedded FAPI 2.0 identity provider for development (`npm start` without `OIDC_ISSUER`) and for
 * the test suite. It is the real `oidc-provider`, configured the way a FAPI 2.0 authorization server
 * must behave (PAR, PKCE S256, `iss` in the authorization response, PS256 signatures), with minimal
 * login and consent pages of its own. Never expose it beyond loopback: it has hard-coded users.
 *
 * @see https://openid.net/specs/fapi-security-profile-2_0-final.html §5.3.2 (authorization server)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { X509Certificate } from 'node:crypto';
import type { default as OidcProvider, JWKS, KoaContextWithOIDC } from 'oidc-provider';
import { providerConfiguration } from './idp/configuration.js';
import { HttpError, handleInteraction, INTERACTION_PATH } from './idp/interaction.js';
import { MTLS_ALIASED_ROUTES, type MtlsAliasedEndpoint, originOf, peerCertificate } from './idp/mtls.js';
import { DEFAULT_DEV_USERS, type DevIdp, type DevIdpOptions } from './idp/options.js';
import { escapeHtml, page, sendHtml, STYLESHEET, STYLESHEET_PATH } from './idp/pages.js';
import { filterExpectedWarnings, loadOidcProvider, log, signingKeys } from './idp/runtime.js';

export {
  DEFAULT_DEV_USERS,
  type DevIdp,
  type DevIdpOptions,
  type DevIdpRequest,
  type DevIdpUser,
} from './idp/options.js';
export type { MtlsAliasedEndpoint } from './idp/mtls.js';

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
  const jwks = (options.jwks as JWKS | undefined) ?? (await signingKeys(options.encryption ?? false));

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
      traceparent: typeof req.headers.traceparent === 'string' ? req.headers.traceparent : undefined,
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

    const configuration = providerConfiguration({
      options,
      users,
      jwks,
      errors,
      accessTokenTtl,
      refreshTokenTtl,
      mtlsEndpointAliases,
      mtlsCertificate,
    });

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

    for (const m of options.middleware ?? []) provider.use(m);
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
