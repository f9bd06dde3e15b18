import type { TlsConfig } from '../types.js';
import type { RuleContext } from './context.js';

/**
 * TLS: plain HTTP only where allowed, client certificate and key together, trust anchors, FIPS.
 * https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.2.1 (TLS everywhere);
 * MS_BFF_ALLOW_HTTP_HOSTS is the operator's explicit exception for internal container traffic.
 */
export interface PlainHttpPolicy {
  /** Reports a plain-HTTP URL: refused in production unless its host is allowed; warned otherwise. */
  check(variable: string, url: URL): void;
  /** Whether plain HTTP to this host is allowed in this profile. */
  allows(host: string): boolean;
}

export function plainHttpPolicy(ctx: RuleContext): PlainHttpPolicy {
  const allowHttpHosts = ctx.values.MS_BFF_ALLOW_HTTP_HOSTS;
  if (allowHttpHosts.length > 0) {
    ctx.warn(`MS_BFF_ALLOW_HTTP_HOSTS allows plain HTTP to: ${allowHttpHosts.join(', ')}`);
  }
  const allows = (host: string) => !ctx.production || allowHttpHosts.includes(bareHost(host));
  return {
    allows,
    check(variable, url) {
      if (url.protocol !== 'http:') return;
      if (ctx.production && !allowHttpHosts.includes(bareHost(url.hostname))) {
        ctx.problem(
          variable,
          `plain HTTP is refused in production (${url.host} is not in MS_BFF_ALLOW_HTTP_HOSTS)`,
        );
      } else if (!ctx.production) {
        ctx.warn(
          `${variable} uses plain HTTP (${url.origin}); allowed only because the profile is development`,
        );
      }
    },
  };
}

function bareHost(hostname: string): string {
  return hostname.toLowerCase().replace(/^\[|\]$/g, '');
}

/** The client certificate (RFC 8705), extra trust anchors and the Redis connection (FIPS: rules/fips.ts). */
export function tlsSettings(ctx: RuleContext): TlsConfig {
  const v = ctx.values;
  if ((v.MTLS_CERT === undefined) !== (v.MTLS_KEY === undefined)) {
    ctx.problem('MTLS_CERT', 'MTLS_CERT and MTLS_KEY go together');
  }
  const redis = v.REDIS_URL;
  if (
    redis?.protocol === 'redis:' &&
    ctx.production &&
    !v.MS_BFF_ALLOW_HTTP_HOSTS.includes(redis.hostname.toLowerCase())
  ) {
    ctx.warn('REDIS_URL uses redis:// without TLS; use rediss:// outside a trusted network');
  }
  return { cert: v.MTLS_CERT, key: v.MTLS_KEY, ca: v.MS_BFF_TLS_CA };
}
