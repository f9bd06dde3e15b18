import { isIP } from 'node:net';

/** Named ranges Fastify's `trustProxy` (proxy-addr) understands besides addresses and CIDRs. */
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * MS_BFF_TRUSTED_PROXIES: comma-separated addresses, CIDRs (`10.0.0.0/8`, `fd00::/8`) or the names
 * loopback, linklocal, uniquelocal. Only a peer in this list may tell us the client's address,
 * host and scheme in `X-Forwarded-*` (RFC 7239 §8.1: the header is only as trustworthy as the
 * proxy that added it). Empty (the default): no peer is trusted and every such header is ignored.
 * Returns the entries, or a problem message.
 */
export function parseTrustedProxies(
  raw: string | undefined,
): { proxies: readonly string[] } | { problem: string } {
  const proxies = (raw ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  const bad = proxies.filter((entry) => !isAddressOrRange(entry));
  if (bad.length > 0)
    return {
      problem: `must list IP addresses, CIDRs or loopback/linklocal/uniquelocal; not: ${bad.join(', ')}`,
    };
  return { proxies };
}

function isAddressOrRange(entry: string): boolean {
  if (NAMED_RANGES.has(entry)) return true;
  const slash = entry.indexOf('/');
  if (slash === -1) return isIP(entry) !== 0;
  const family = isIP(entry.slice(0, slash));
  const bits = entry.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}
