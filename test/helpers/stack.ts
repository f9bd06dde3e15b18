import { type DevIdp, type DevIdpOptions, startDevIdp } from '../../src/dev/idp.js';
import { type ClientKey, clientMetadata, makeClientKey, type RunningBff, startBff } from './bff-harness.js';
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
  close(): Promise<void>;
}

export type StackOptions = {
  clientId: string;
  alg?: 'ES256' | 'PS256';
  /** Extra client metadata registered at the IdP (merged over clientMetadata()). */
  client?: Record<string, unknown>;
  /** Options of the IdP besides `clients`. */
  idp?: Omit<DevIdpOptions, 'clients'>;
  /** The route table; gets the upstream's URL. Default: `{ echo: upstream }`. */
  routes?: (upstreamUrl: string) => Record<string, unknown>;
} & Omit<Parameters<typeof startBff>[0], 'port' | 'issuer' | 'clientId' | 'key' | 'routes'>;

export async function startStack(opts: StackOptions): Promise<Stack> {
  const { clientId, alg, client, idp: idpOptions, routes, ...bffOptions } = opts;
  const port = await freePort();
  const key = await makeClientKey(alg ?? 'ES256');
  const stopped: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const stop of stopped.reverse()) await stop();
  };
  try {
    const idp = await startDevIdp({
      ...idpOptions,
      clients: [{ ...clientMetadata(clientId, `http://127.0.0.1:${port}`, key), ...client }],
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
    return { idp, bff, upstream, key, clientId, close };
  } catch (err) {
    await close();
    throw err;
  }
}
