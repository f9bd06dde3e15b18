import { timingSafeEqual } from 'node:crypto';

/**
 * Constant-time equality of two strings (their contents never leak through timing; lengths may).
 * For comparisons with secrets an attacker can probe: binding hashes, logout sids.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
