import { randomBytes } from 'node:crypto';
import { type DevIdp, type DevIdpOptions, startDevIdp } from '../../src/dev/idp.js';
import { createRedisStore } from '../../src/store/redis-store.js';
import {
  type ClientKey,
  clientMetadata,
  makeClientKey,
  REDIS_URL,
  type RunningBff,
  startBff,
} from './bff-harness.js';
import { type HostileIdp, type HostileIdpOptions, startHostileIdp } from './hostile-idp.js';
import { freePort } from './ports.js';
import { type RecordingUpstream, startRecordingUpstream } from './upstream.js';

/**
 * The usual end-to-end stack: the development IdP (real oidc-provider) with the BFF registered as
 * a private_key_jwt client, a recording upstream, and a BFF configured through its environment
 * variables, all on loopback. `close()` stops them in reverse order.
 */
export interface Stack {
  readonly idp: DevIdp;
  readonly bff: RunningBff;
  readonly upstream: RecordingUpstream;
  readonly key: ClientKey;
  readonly clientId: string;
  /** The further BFFs asked for in `others`, by the same names. */
  readonly others: Readonly<Record<string, RunningBff>>;
  close(): Promise<void>;
}

/** A further BFF of a stack: its own client at the same IdP, signing with the same key. */
export type OtherBff = {
  clientId: string;
  /** The route table; gets the upstream's URL. Default: no routes. */
  routes?: (upstreamUrl: string) => Record<string, unknown>;
} & Omit<Parameters<typeof startBff>[0], 'port' | 'issuer' | 'clientId' | 'key' | 'routes'>;

export type StackOptions = {
  clientId: string;
  alg?: 'ES256' | 'PS256';
  /** Extra client metadata registered at the IdP (merged over clientMetadata()). */
  client?: Record<string, unknown>;
  /** Options of the IdP besides `clients`. */
  idp?: Omit<DevIdpOptions, 'clients'>;
  /** The route table; gets the upstream's URL. Default: `{ echo: upstream }`. */
  routes?: (upstreamUrl: string) => Record<string, unknown>;
  /** Further BFFs side by side (e.g. differently configured), each its own client at the IdP. */
  others?: Record<string, OtherBff>;
} & Omit<Parameters<typeof startBff>[0], 'port' | 'issuer' | 'clientId' | 'key' | 'routes'>;

export async function startStack(opts: StackOptions): Promise<Stack> {
  const { clientId, alg, client, idp: idpOptions, routes, others = {}, ...bffOptions } = opts;
  const port = await freePort();
  const otherPorts: Record<string, number> = {};
  for (const name of Object.keys(others)) otherPorts[name] = await freePort();
  const key = await makeClientKey(alg ?? 'ES256');
  const stopped: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const stop of stopped.reverse()) await stop();
  };
  try {
    const idp = await startDevIdp({
      ...idpOptions,
      clients: [
        { ...clientMetadata(clientId, `http://127.0.0.1:${port}`, key), ...client },
        ...Object.entries(others).map(([name, o]) =>
          clientMetadata(o.clientId, `http://127.0.0.1:${otherPorts[name]}`, key),
        ),
      ],
    });
    stopped.push(() => idp.close());
    const upstream = await startRecordingUpstream();
    stopped.push(() => upstream.close());
    const bff = await startBff({
      ...bffOptions,
      port,
      issuer: idp.issuer,
      clientId,
      key,
      routes: routes ? routes(upstream.url) : { echo: upstream.url },
    });
    stopped.push(() => bff.close());
    const started: Record<string, RunningBff> = {};
    for (const [name, { routes: otherRoutes, ...other }] of Object.entries(others)) {
      const otherBff = await startBff({
        ...other,
        port: otherPorts[name]!,
        issuer: idp.issuer,
        key,
        ...(otherRoutes ? { routes: otherRoutes(upstream.url) } : {}),
      });
      stopped.push(() => otherBff.close());
      started[name] = otherBff;
    }
    return { idp, bff, upstream, key, clientId, others: started, close };
  } catch (err) {
    await close();
    throw err;
  }
}

type BffOptions = Parameters<typeof startBff>[0];

/**
 * Two BFF instances sharing one Redis (under a fresh key prefix) and one session key, as behind a
 * load balancer. Each instance's `close()` also closes its store.
 */
export async function startBffPair(
  opts: Omit<BffOptions, 'port' | 'store'> & { ports: readonly [number, number]; prefix: string },
): Promise<[RunningBff, RunningBff]> {
  const { ports, prefix, ...common } = opts;
  const keyPrefix = `${prefix}:${randomBytes(4).toString('hex')}:`;
  const sessionKey = common.sessionKey ?? randomBytes(32).toString('base64url');
  const started: RunningBff[] = [];
  try {
    for (const port of ports) {
      const store = await createRedisStore({ url: REDIS_URL, keyPrefix });
      const bff = await startBff({ ...common, sessionKey, port, store }).catch(async (err: unknown) => {
        await store.close();
        throw err;
      });
      started.push({
        ...bff,
        async close() {
          await bff.close();
          await store.close();
        },
      });
    }
  } catch (err) {
    for (const bff of started) await bff.close();
    throw err;
  }
  return [started[0]!, started[1]!];
}

/**
 * The hostile IdP (it signs whatever a test asks) with the BFF on 127.0.0.1:`port` registered as a
 * private_key_jwt client with `key`.
 */
export async function startHostileIdpFor(
  clientId: string,
  port: number,
  key: ClientKey,
  opts: Partial<Omit<HostileIdpOptions, 'clientId' | 'clientJwks'>> = {},
): Promise<HostileIdp> {
  const meta = clientMetadata(clientId, `http://127.0.0.1:${port}`, key);
  return startHostileIdp({
    clientId,
    clientJwks: meta.jwks as { keys: object[] },
    redirectUris: meta.redirect_uris as string[],
    ...opts,
  });
}

/** What a hostile IdP advertises so that a BFF may ask it for JARM (signed, query.jwt). */
export const JARM_IDP_METADATA = {
  response_modes_supported: ['query', 'jwt', 'query.jwt'],
  authorization_signing_alg_values_supported: ['PS256', 'ES256'],
};

/** A BFF sending signed request objects (JAR) and asking for JARM responses in query.jwt. */
export const JARM_ENV = {
  MS_BFF_JAR_ENABLED: 'true',
  MS_BFF_JARM_ENABLED: 'true',
  MS_BFF_JARM_MODE: 'query.jwt',
} as const;

export interface HostileStack {
  readonly idp: HostileIdp;
  readonly bff: RunningBff;
  close(): Promise<void>;
}

/**
 * The hostile IdP with one BFF registered at it (private_key_jwt, ES256). `metadata` is what the
 * IdP advertises over its defaults from the start (the BFF reads it at startup); `hostile` are
 * further options of the IdP (e.g. its ID token `alg`).
 */
export async function startHostileStack(
  opts: {
    clientId: string;
    hostile?: Partial<Omit<HostileIdpOptions, 'clientId' | 'clientJwks'>>;
    metadata?: Record<string, unknown>;
  } & Omit<BffOptions, 'port' | 'issuer' | 'clientId' | 'key'>,
): Promise<HostileStack> {
  const { clientId, hostile, metadata, ...bffOptions } = opts;
  const port = await freePort();
  const key = await makeClientKey('ES256');
  const idp = await startHostileIdpFor(clientId, port, key, hostile);
  if (metadata) idp.misbehave({ overrideMetadata: metadata });
  const bff = await startBff({ ...bffOptions, port, issuer: idp.issuer, clientId, key }).catch(
    async (err: unknown) => {
      await idp.close();
      throw err;
    },
  );
  return {
    idp,
    bff,
    async close() {
      await bff.close();
      await idp.close();
    },
  };
}
