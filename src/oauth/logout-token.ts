import { createHash } from 'node:crypto';
import { BffError } from '../errors.js';
import type { KeyValueStore } from '../store/store.js';
import { type KeyResolver, JwtPolicyError, verifyJws } from '../jose/jwt-policy.js';

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** How long a logout token may have been issued ago (BCL §2.6 leaves the window to the RP). */
const MAX_AGE_SEC = 300;

export interface LogoutTokenOptions {
  issuer: string;
  clientId: string;
  /** The ID token alg allowlist (BCL §2.6-2: verified like an ID token; FAPI 2.0 algs only). */
  algorithms: readonly string[];
  keys: KeyResolver;
  replay: KeyValueStore;
  /**
   * §2.4 requires exp; false (MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP) tolerates IdPs that omit it. Such a
   * token is still bounded by the iat age below and used once (the replay key outlives that age).
   */
  requireExp?: boolean;
  clock?: () => number;
}

/**
 * Verify an OpenID Connect Back-Channel Logout 1.0 logout token (§2.4, §2.6) and return what it
 * names. Every rule of §2.6 is checked, and the rules are exclusive with the ID token's and
 * JARM's (RFC 8725 §3.12): `events` required, `nonce` forbidden, so neither can pass for the other.
 */
export async function verifyLogoutToken(
  token: string,
  opts: LogoutTokenOptions,
): Promise<{ sid: string | undefined; sub: string | undefined; jti: string }> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await verifyJws(token, opts.keys, {
      algorithms: opts.algorithms,
      issuer: opts.issuer,
      audience: opts.clientId,
      // §2.4: `logout+jwt` is recommended, not required; accept it or no typ, never another kind.
      typ: { allowed: ['logout+jwt', 'JWT'], required: false },
      requiredClaims: ['iat', 'jti'],
      ...(opts.requireExp === false ? { expOptional: true } : {}),
      maxIatAgeSec: MAX_AGE_SEC,
      ...(opts.clock ? { clock: opts.clock } : {}),
    }));
  } catch (err) {
    if (err instanceof JwtPolicyError) throw refused(err.reason, err);
    throw err;
  }
  const events = payload.events;
  if (typeof events !== 'object' || events === null || Array.isArray(events)) throw refused('events_missing');
  const event = (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT];
  if (typeof event !== 'object' || event === null || Array.isArray(event)) throw refused('events_wrong');
  // §2.6-7: a nonce would make it an ID token.
  if ('nonce' in payload) throw refused('nonce_present');
  const sid = typeof payload.sid === 'string' && payload.sid.length > 0 ? payload.sid : undefined;
  const sub = typeof payload.sub === 'string' && payload.sub.length > 0 ? payload.sub : undefined;
  if (!sid && !sub) throw refused('sid_and_sub_missing');
  const jti = typeof payload.jti === 'string' && payload.jti.length > 0 ? payload.jti : undefined;
  if (!jti) throw refused('jti_missing');
  // §2.6-8 (optional, done): a token is used once, on every instance (the store is shared).
  const replayKey = `bcl:${createHash('sha256').update(`${opts.issuer} ${jti}`).digest('base64url')}`;
  const fresh = await opts.replay.setIfAbsent(replayKey, '1', (MAX_AGE_SEC + 60) * 1000);
  if (!fresh) throw refused('replay');
  return { sid, sub, jti };
}

function refused(reason: string, cause?: unknown): BffError {
  return new BffError('BFF_LOGOUT_TOKEN_INVALID', { reason, detail: reason, ...(cause ? { cause } : {}) });
}
