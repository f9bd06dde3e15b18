import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { loadConfig } from '../../src/config/load.js';
import type { BffConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors.js';
import type { IdpFetch } from '../../src/oauth/http.js';
import { IdpClient } from '../../src/oauth/idp-client.js';
import { loggerOptions } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { buildApp } from '../../src/server/app.js';
import type { BffServices } from '../../src/server/services.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { createRedisStore } from '../../src/store/redis-store.js';
import type { KeyValueStore } from '../../src/store/store.js';

export type StoreKind = 'memory' | 'redis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Re-exported: many test files import it from here. */
export { freePort } from './ports.js';

export interface ClientKey {
  privateJwk: JWK;
  publicJwk: JWK;
}

export async function makeClientKey(alg: 'ES256' | 'PS256' | 'EdDSA' = 'ES256'): Promise<ClientKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `client-${randomBytes(4).toString('hex')}`;
  return {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
  };
}

/** The oidc-provider client metadata that registers a BFF at `publicUrl`. */
export function clientMetadata(clientId: string, publicUrl: string, key: ClientKey): Record<string, unknown> {
  return {
    client_id: clientId,
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: key.publicJwk.alg,
    id_token_signed_response_alg: 'PS256',
    jwks: { keys: [key.publicJwk] },
    redirect_uris: [`${publicUrl}/auth/callback`],
    post_logout_redirect_uris: [`${publicUrl}/`],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  };
}

export async function makeStore(kind: StoreKind): Promise<KeyValueStore> {
  if (kind === 'memory') return new MemoryStore({ maxEntries: 10_000 });
  return createRedisStore({ url: REDIS_URL, keyPrefix: `bff-test:${randomBytes(6).toString('hex')}:` });
}

export interface RunningBff {
  url: string;
  app: FastifyInstance;
  services: BffServices;
  config: BffConfig;
  metrics: Metrics;
  store: KeyValueStore;
  /** The admin listener's URL when MS_BFF_ADMIN_PORT is set. */
  adminUrl: string | undefined;
  close(): Promise<void>;
}

/** Collects every log line (pino JSON) written at `level` and above, parsed. */
export class LogSink {
  readonly lines: string[] = [];
  readonly stream = new Writable({
    write: (chunk, _enc, done) => {
      for (const line of String(chunk).split('\n')) if (line) this.lines.push(line);
      done();
    },
  });
  records(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  /** Audit lines, optionally of one event. */
  audit(event?: string): Record<string, unknown>[] {
    return this.records().filter((r) => r.audit === true && (event === undefined || r.event === event));
  }
}

/**
 * The smallest valid configuration of a deployed BFF (IdP and public URL in example.com, a fresh
 * signing key and session key), with `extra` over it: the base of configuration unit tests.
 */
export async function minimalEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const key = await makeClientKey('ES256');
  return {
    OIDC_ISSUER: 'https://idp.example.com',
    OIDC_CLIENT_ID: 'bff',
    BFF_JWT_SIGNING_KEY: JSON.stringify(key.privateJwk),
    MS_BFF_PUBLIC_URL: 'https://app.example.com',
    MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
    ...extra,
  };
}

/**
 * The problems loadConfig reports for `env`, by variable (several for one variable joined by
 * " | "); fails the test when the configuration is accepted.
 */
export async function configProblems(env: Record<string, string | undefined>): Promise<Map<string, string>> {
  try {
    await loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    const byVariable = new Map<string, string>();
    for (const p of err.problems)
      byVariable.set(p.variable, [byVariable.get(p.variable), p.message].filter(Boolean).join(' | '));
    return byVariable;
  }
  assert.fail('expected a ConfigError');
}

/** The environment startBff configures a BFF with: the same variables an operator sets. */
export function bffEnv(opts: {
  port: number;
  issuer: string;
  clientId: string;
  key?: ClientKey;
  routes?: Record<string, unknown>;
  env?: Record<string, string>;
  sessionKey?: string;
}): Record<string, string> {
  return {
    OIDC_ISSUER: opts.issuer,
    OIDC_CLIENT_ID: opts.clientId,
    ...(opts.key ? { BFF_JWT_SIGNING_KEY: JSON.stringify(opts.key.privateJwk) } : {}),
    MS_BFF_PROFILE: 'development',
    MS_BFF_PUBLIC_URL: `http://127.0.0.1:${opts.port}`,
    HOST: '127.0.0.1',
    PORT: String(opts.port),
    MS_BFF_ROUTES: JSON.stringify(opts.routes ?? {}),
    MS_BFF_SESSION_KEYS: opts.sessionKey ?? randomBytes(32).toString('base64url'),
    LOG_LEVEL: 'silent',
    ...opts.env,
  };
}

/**
 * The environment of a BFF whose frontends are all in the MS_BFF_CONFIG `file` (no client, public
 * URL or routes in the environment), as an operator of several frontends sets it.
 */
export async function frontendsEnv(opts: {
  issuer: string;
  port: number;
  file: string;
}): Promise<Record<string, string>> {
  const key = await makeClientKey('ES256');
  return {
    OIDC_ISSUER: opts.issuer,
    BFF_JWT_SIGNING_KEY: JSON.stringify(key.privateJwk),
    MS_BFF_PROFILE: 'development',
    MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
    HOST: '127.0.0.1',
    PORT: String(opts.port),
    MS_BFF_CONFIG: opts.file,
  };
}

/**
 * Start a real BFF (config → IdP client → app → listen) on 127.0.0.1:`port`, configured only
 * through the same variables an operator sets.
 */
export async function startBff(opts: {
  port: number;
  issuer: string;
  clientId: string;
  key?: ClientKey;
  routes?: Record<string, unknown>;
  store?: KeyValueStore;
  storeKind?: StoreKind;
  env?: Record<string, string>;
  /** Replaces the fetch of every IdP call (e.g. to record what the BFF put on the wire). */
  idpFetch?: IdpFetch;
  clock?: () => number;
  /** Log at `logLevel` (default info) into this sink instead of not at all. */
  logs?: LogSink;
  logLevel?: string;
  /** Receives the IdP client's log lines (diagnostics of IdP failures); silent by default. */
  idpLogger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  sessionKey?: string;
}): Promise<RunningBff> {
  const publicUrl = `http://127.0.0.1:${opts.port}`;
  const config = await loadConfig(bffEnv(opts));
  const metrics = new Metrics({ defaultMetrics: false });
  const store = opts.store ?? (await makeStore(opts.storeKind ?? 'memory'));
  const level = opts.logLevel ?? 'info';
  const idpLogger = opts.logs
    ? pino(loggerOptions(level), opts.logs.stream)
    : (opts.idpLogger ?? { warn() {}, info() {} });
  const idp = await IdpClient.create(config, metrics, idpLogger, opts.idpFetch);
  const { app, services, admin } = await buildApp({
    config,
    store,
    idp,
    metrics,
    logger: opts.logs ? { ...loggerOptions(level), stream: opts.logs.stream } : false,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  await app.listen({ host: '127.0.0.1', port: opts.port });
  let adminUrl: string | undefined;
  if (admin) {
    await admin.listen({ host: '127.0.0.1', port: config.observability.admin.port ?? 0 });
    adminUrl = `http://127.0.0.1:${(admin.server.address() as AddressInfo).port}`;
  }
  return {
    url: publicUrl,
    app,
    services,
    config,
    metrics,
    store,
    adminUrl,
    async close() {
      await app.close();
      if (!opts.store) await store.close();
    },
  };
}
