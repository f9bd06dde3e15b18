import { createRequire } from 'node:module';
import type * as Tls from 'node:tls';

// The CommonJS module object: its DEFAULT_* members are writable (an ESM namespace import is not).
export const nodeTls = createRequire(import.meta.url)('node:tls') as typeof Tls;

/**
 * TLS suites for FIPS mode, following BCP 195 (RFC 9325 §4.2): TLS 1.3 with AES-GCM, or TLS 1.2 with
 * ECDHE and AES-GCM; ChaCha20-Poly1305 and X25519 are left out (not FIPS-approved).
 * https://www.rfc-editor.org/rfc/rfc9325#section-4.2
 */
export const FIPS_TLS = Object.freeze({
  minVersion: 'TLSv1.2' as const,
  ciphers: [
    'TLS_AES_256_GCM_SHA384',
    'TLS_AES_128_GCM_SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
  ].join(':'),
  ecdhCurve: 'P-256:P-384',
});

/**
 * Pin every TLS connection this process opens (IdP, Redis, upstreams: undici and ioredis all build
 * their contexts from Node's defaults unless told otherwise) to the approved suites. Called once by
 * the composition root when FIPS_MODE=true.
 */
export function pinFipsTls(): void {
  nodeTls.DEFAULT_MIN_VERSION = FIPS_TLS.minVersion;
  nodeTls.DEFAULT_CIPHERS = FIPS_TLS.ciphers;
  nodeTls.DEFAULT_ECDH_CURVE = FIPS_TLS.ecdhCurve;
}
