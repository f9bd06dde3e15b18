import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** RFC 8705 (https://www.rfc-editor.org/rfc/rfc8705): the mTLS alias port and certificate matching. */

/**
 * The endpoints served on the mTLS alias port, with oidc-provider's route names and default paths
 * (the dev IdP does not change `routes`; startup checks the paths against the provider).
 */
export const MTLS_ALIASED_ROUTES = {
  token_endpoint: { route: 'token', path: '/token' },
  pushed_authorization_request_endpoint: { route: 'pushed_authorization_request', path: '/request' },
  revocation_endpoint: { route: 'revocation', path: '/token/revocation' },
  introspection_endpoint: { route: 'introspection', path: '/token/introspection' },
  userinfo_endpoint: { route: 'userinfo', path: '/me' },
} as const;

export type MtlsAliasedEndpoint = keyof typeof MTLS_ALIASED_ROUTES;

export function originOf(protocol: 'http' | 'https', host: string, port: number): string {
  return `${protocol}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function peerCertificate(socket: Socket | undefined): X509Certificate | undefined {
  const tls = socket as Partial<TLSSocket> | undefined;
  if (typeof tls?.getPeerX509Certificate !== 'function') return undefined;
  return tls.getPeerX509Certificate() ?? undefined;
}

/** An RFC 4514 DN as a list of `TYPE=value` RDNs: attribute types upper-cased, spaces trimmed. */
function normalizeDn(rdns: string[]): string[] {
  return rdns.map((rdn) => {
    const eq = rdn.indexOf('=');
    return eq < 0 ? rdn.trim() : `${rdn.slice(0, eq).trim().toUpperCase()}=${rdn.slice(eq + 1).trim()}`;
  });
}

/** Splits an RFC 4514 string at unescaped commas. */
function splitRfc4514(dn: string): string[] {
  const out: string[] = [];
  let current = '';
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i];
    if (c === '\\' && i + 1 < dn.length) {
      current += c + dn[i + 1];
      i++;
    } else if (c === ',') {
      out.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  out.push(current);
  return out;
}

/**
 * RFC 8705 §2.1.2: does the certificate match the registered `tls_client_auth_*` value? The subject
 * DN is compared as RFC 4514 (most specific RDN first); Node lists the RDNs in certificate order.
 */
export function certificateMatches(cert: X509Certificate, property: string, expected: string): boolean {
  if (property === 'tls_client_auth_subject_dn') {
    const actual = normalizeDn(cert.subject.split('\n').reverse());
    const wanted = normalizeDn(splitRfc4514(expected));
    return actual.length === wanted.length && actual.every((rdn, i) => rdn === wanted[i]);
  }
  const prefix = {
    tls_client_auth_san_dns: 'DNS:',
    tls_client_auth_san_ip: 'IP Address:',
    tls_client_auth_san_email: 'email:',
    tls_client_auth_san_uri: 'URI:',
  }[property];
  if (!prefix || !cert.subjectAltName) return false;
  return cert.subjectAltName.split(', ').some((entry) => entry === `${prefix}${expected}`);
}
