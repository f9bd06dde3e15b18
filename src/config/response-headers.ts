/**
 * Never forwarded, even when a route lists them: each acts on the BFF's origin rather than on the
 * response (cookies, storage wipe, navigation, CORS grants, transport policy), is the upstream's
 * own authentication challenge (a Basic challenge would open the browser's login dialog on our
 * origin), or is ours to set. Hop-by-hop headers and DPoP-Nonce are removed before this.
 */
const NEVER = new Set([
  'set-cookie',
  'set-cookie2',
  'clear-site-data',
  'refresh',
  'strict-transport-security',
  'alt-svc',
  'www-authenticate',
  'proxy-authenticate',
  'content-length',
  'transfer-encoding',
  'server',
  'x-powered-by',
]);

/** Also checked at startup against each route's `responseHeaders` (rules/routes.ts). */
export function isForbiddenResponseHeader(name: string): boolean {
  return NEVER.has(name) || name.startsWith('access-control-');
}
