import { randomFillSync } from 'node:crypto';

/**
 * Random identifiers for the hot path (W3C trace and span ids, DPoP proof `jti`s) drawn from a pooled
 * CSPRNG buffer, as Node's own `randomUUID` does: one `randomFillSync` per 4 KiB instead of one
 * synchronous call into OpenSSL per identifier (profiled at ~5–10 µs per call under load; three
 * calls per DPoP request). The bytes come from the same CSPRNG and each byte is handed out once.
 */
const POOL_BYTES = 4096;
let pool: Buffer | undefined;
let offset = POOL_BYTES;

function take(bytes: number): Buffer {
  if (bytes > POOL_BYTES) return randomFillSync(Buffer.allocUnsafe(bytes));
  if (pool === undefined || offset + bytes > POOL_BYTES) {
    pool = randomFillSync(pool ?? Buffer.allocUnsafe(POOL_BYTES));
    offset = 0;
  }
  const out = pool.subarray(offset, offset + bytes);
  offset += bytes;
  return out;
}

/** `bytes` random bytes as lower-case hex (trace and span ids, https://www.w3.org/TR/trace-context/#trace-id). */
export function randomHex(bytes: number): string {
  return take(bytes).toString('hex');
}

/** `bytes` random bytes as base64url without padding (a DPoP `jti`, RFC 9449 §4.2). */
export function randomBase64url(bytes: number): string {
  return take(bytes).toString('base64url');
}
