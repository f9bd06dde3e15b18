import { debuglog } from 'node:util';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { JWKS } from 'oidc-provider';
import { SIGNING_ALGS as CLIENT_SIGNING_ALG_VALUES } from '../../config/enums.js';

/** Loading oidc-provider quietly, the IdP's keys, and its outgoing fetch. */

export const log = debuglog('fapi-bff:dev-idp');
/** The IdP's own signing algs: FAPI 2.0 algorithms (Security Profile §5.4), without EdDSA (FIPS runs). */
export const SIGNING_ALGS = ['PS256', 'ES256'] as const;
/** What it accepts from clients (client assertions, request objects): every alg the BFF can sign with. */
export const CLIENT_SIGNING_ALGS = CLIENT_SIGNING_ALG_VALUES;

/**
 * Warnings oidc-provider prints that are expected here: Node 20 is below its preferred runtime, and
 * the in-memory adapter is deliberate for a development IdP. Routed to NODE_DEBUG=fapi-bff:dev-idp.
 */
const EXPECTED_WARNINGS = [/Unsupported runtime/, /in-memory adapter/];

export function filterExpectedWarnings(): () => void {
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
export function loadOidcProvider(): Promise<OidcProviderModule> {
  if (!oidcProviderModule) {
    const restore = filterExpectedWarnings();
    oidcProviderModule = import('oidc-provider').finally(restore);
  }
  return oidcProviderModule;
}

export async function signingKeys(withEncryption: boolean): Promise<JWKS> {
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

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * oidc-provider guards its outgoing fetch (back-channel logout, client jwks_uri) with a dispatcher
 * that refuses loopback and private addresses against SSRF. Development clients live on loopback,
 * so only for loopback URLs is the guard dropped; every other destination keeps it.
 */
export function loopbackFriendlyFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const url = new URL(input instanceof Request ? input.url : input);
  if (init && isLoopbackHost(url.hostname)) {
    const { dispatcher: _guard, ...rest } = init as RequestInit & { dispatcher?: unknown };
    return fetch(input, rest);
  }
  return fetch(input, init);
}
