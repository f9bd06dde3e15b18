import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BffError, isBffError } from '../errors.js';
import type { DpopKeyCache } from '../dpop/client.js';
import type { IdpClient, TokenSet } from '../oauth/idp-client.js';
import { afterRefresh } from '../session/login-trace.js';
import type {
  LoadedSession,
  ResourceToken,
  SessionData,
  SessionManager,
} from '../session/session-manager.js';
import type { KeyValueStore } from '../store/store.js';

const LOCK_POLL_MS = 25;

function lockKey(sessionKey: string): string {
  return `refresh-lock:${sessionKey}`;
}

export interface RefreshEvents {
  refresh(outcome: 'success' | 'failure' | 'invalid_grant' | 'shared', seconds?: number): void;
  session(event: 'created' | 'ended' | 'expired'): void;
  revocation(outcome: 'success' | 'failure' | 'skipped'): void;
  /** Audit lines (src/observability/audit.ts): session.refreshed, refresh.failed, session.expired. */
  audit?(
    event: 'session.refreshed' | 'refresh.failed' | 'session.expired',
    values: { sessionKey: string; sub: string; code?: string; reason?: string },
  ): void;
  /** An upstream refused the access token (401 invalid_token): what the BFF did about it. */
  upstreamInvalidToken(outcome: InvalidTokenOutcome): void;
}

/** A resource token and the session as it was stored with it. */
export interface ResourceGrant {
  readonly session: LoadedSession;
  readonly token: ResourceToken;
}

export type InvalidTokenOutcome =
  'refreshed' | 'shared' | 'rate_limited' | 'no_refresh_token' | 'refresh_failed' | 'body_not_replayable';

/** The refresh token `tokens` rotated `used` to (RFC 9700 §4.14.2), if any. */
function rotatedRefreshToken(tokens: TokenSet, used: string): string | undefined {
  return tokens.refreshToken !== undefined && tokens.refreshToken !== used ? tokens.refreshToken : undefined;
}

function invalidTokenGate(sessionKey: string): string {
  return `refresh-on-401:${sessionKey}`;
}

/**
 * Keeps a session's access token usable: refreshes shortly before expiry when the token is used.
 * Concurrent requests of one session share one refresh: single-flight per instance, and a store
 * lock across instances; the rotated refresh token is stored with compare-and-set so a stale writer
 * can never overwrite it (FAPI 2.0 §5.3.3.1-6: support refresh token rotation).
 */
export class AccessTokens {
  private readonly inflight = new Map<string, Promise<LoadedSession>>();
  /** Per session and resource: one refresh grant with `resource` at a time in this process. */
  private readonly resourceInflight = new Map<string, Promise<ResourceGrant>>();

  constructor(
    private readonly idp: IdpClient,
    private readonly sessions: SessionManager,
    private readonly skewSec: number,
    private readonly events: RefreshEvents,
    private readonly dpopKeys: DpopKeyCache,
    private readonly store: KeyValueStore,
    /** Longer than any refresh can take (the IdP timeout), so a live refresher keeps its lock. */
    private readonly lockTtlMs: number,
    private readonly clock: () => number = Date.now,
    /** The shared JOSE policy for a refreshed ID token (OpenID Connect Core §12.2). */
    private readonly idTokenPolicy?: (idToken: string) => Promise<void>,
  ) {}

  /** Whether the access token is outside the refresh window: ensureFresh would return the session as is. */
  isFresh(session: LoadedSession): boolean {
    return session.data.accessTokenExpiresAt - this.skewSec * 1000 > this.clock();
  }

  /** `force`: refresh even a token that is still fresh (the development inspector's "refresh now"). */
  async ensureFresh(session: LoadedSession, force = false): Promise<LoadedSession> {
    if (!force && this.isFresh(session)) return session;
    if (!session.data.refreshToken) {
      if (session.data.accessTokenExpiresAt > this.clock()) return session;
      await this.end(session, 'no_refresh_token');
      throw new BffError('BFF_SESSION_EXPIRED', { reason: 'no_refresh_token' });
    }
    const pending = this.inflight.get(session.key);
    if (pending) {
      this.events.refresh('shared');
      return pending;
    }
    const run = this.refreshUnlessDone(session).finally(() => this.inflight.delete(session.key));
    this.inflight.set(session.key, run);
    return run;
  }

  /**
   * The upstream refused `used` (the session as the request saw it) with 401 invalid_token (RFC 6750
   * §3.1): a token can be revoked or rotated before its `expires_in`. Reuse a refresh already made or
   * in flight for this session; otherwise refresh through the same single-flight path and store lock
   * as ensureFresh, at most once per `minIntervalSec` per session across instances (a store key with
   * that TTL), so an upstream that refuses every token cannot cause a refresh storm. Returns the
   * session with a new access token, or undefined when there is none to retry with.
   */
  async renewRejected(used: LoadedSession, minIntervalSec: number): Promise<LoadedSession | undefined> {
    if (!used.data.refreshToken) {
      this.events.upstreamInvalidToken('no_refresh_token');
      return undefined;
    }
    try {
      const pending = this.inflight.get(used.key);
      if (pending) {
        const shared = await pending;
        this.events.upstreamInvalidToken('shared');
        return shared.data.accessToken !== used.data.accessToken ? shared : undefined;
      }
      const latest = await this.sessions.reload(used.key);
      if (!latest) return undefined;
      if (latest.data.accessToken !== used.data.accessToken) {
        this.events.upstreamInvalidToken('shared');
        return latest;
      }
      if (await this.renewalRateLimited(invalidTokenGate(used.key), minIntervalSec)) return undefined;
      const run = this.refreshUnlessDone(latest).finally(() => this.inflight.delete(used.key));
      this.inflight.set(used.key, run);
      const fresh = await run;
      if (fresh.data.accessToken === used.data.accessToken) {
        // The IdP could not be reached: refresh() kept the unexpired token.
        this.events.upstreamInvalidToken('refresh_failed');
        return undefined;
      }
      this.events.upstreamInvalidToken('refreshed');
      return fresh;
    } catch {
      // invalid_grant ends the session (refresh() did); anything else: the upstream's 401 stands.
      this.events.upstreamInvalidToken('refresh_failed');
      return undefined;
    }
  }

  /**
   * Refresh once across every instance sharing the store. A request may have read the session just
   * before a sibling's refresh finished, here or on another instance: it must reuse that refresh,
   * never replay the rotated refresh token (a rotating IdP then revokes the whole grant, RFC 9700
   * §4.14.2). So: re-read; take the session's refresh lock (expiring, holding a random fencing
   * token); re-read under the lock; refresh; store with compare-and-set; release only our own lock.
   * Instances that do not get the lock wait for the winner's result in the store.
   */
  private refreshUnlessDone(seen: LoadedSession): Promise<LoadedSession> {
    return this.underRefreshLock(
      seen,
      (latest) => (latest.data.accessToken !== seen.data.accessToken ? latest : undefined),
      (current) => this.refresh(current),
    );
  }

  /**
   * The lock protocol of refreshUnlessDone, for any grant on the session's refresh token. `done`:
   * the result a sibling already stored in `latest`, if any (counted as a shared refresh); `grant`:
   * the grant to run on the session as re-read under the lock.
   */
  private async underRefreshLock<T>(
    seen: LoadedSession,
    done: (latest: LoadedSession) => T | undefined,
    grant: (current: LoadedSession) => Promise<T>,
  ): Promise<T> {
    const deadline = this.clock() + this.lockTtlMs;
    for (;;) {
      const latest = await this.sessions.reload(seen.key);
      if (!latest) throw new BffError('BFF_SESSION_EXPIRED', { reason: 'gone_before_refresh' });
      const shared = done(latest);
      if (shared !== undefined) {
        this.events.refresh('shared');
        return shared;
      }
      const fence = randomBytes(16).toString('base64url');
      const lock = lockKey(seen.key);
      if (await this.store.setIfAbsent(lock, fence, this.lockTtlMs)) {
        try {
          // Re-read under the lock: a resource grant (or a sibling) may have rotated the refresh
          // token between the read above and taking the lock.
          const current = await this.sessions.reload(seen.key);
          if (!current) throw new BffError('BFF_SESSION_EXPIRED', { reason: 'gone_before_refresh' });
          const sharedUnderLock = done(current);
          if (sharedUnderLock !== undefined) {
            this.events.refresh('shared');
            return sharedUnderLock;
          }
          return await grant(current);
        } finally {
          // Release only if the lock is still ours (it may have expired and been taken since).
          await this.store.compareAndSet(lock, fence, 'released', 1).catch(() => undefined);
        }
      }
      if (this.clock() > deadline) {
        throw new BffError('BFF_IDP_UNAVAILABLE', { status: 503, reason: 'refresh_lock_timeout' });
      }
      await sleep(LOCK_POLL_MS);
    }
  }

  /** The session's stored token for `resource` when it is outside the refresh window (and not `rejected`). */
  freshResourceToken(session: LoadedSession, resource: string, rejected?: string): ResourceToken | undefined {
    const token = session.data.resourceTokens?.[resource];
    if (!token || token.accessToken === rejected) return undefined;
    return token.expiresAt - this.skewSec * 1000 > this.clock() ? token : undefined;
  }

  /**
   * An access token for one resource (RFC 8707 §2.2, https://www.rfc-editor.org/rfc/rfc8707#section-2.2):
   * the stored one while fresh, else a refresh_token grant with `resource`, kept in the session record
   * until shortly before expiry. The grant runs under the session's refresh lock and is stored with
   * compare-and-set exactly like a normal refresh: a rotated refresh token it returns replaces the
   * session's one, so no refresh (normal or for another resource) ever replays a spent one.
   * `rejected`: a token the upstream refused (RFC 6750 §3.1), never handed out again.
   */
  async forResource(session: LoadedSession, resource: string, rejected?: string): Promise<ResourceGrant> {
    const fresh = this.freshResourceToken(session, resource, rejected);
    if (fresh) return { session, token: fresh };
    if (!session.data.refreshToken) {
      // Only a refresh grant can narrow the token to this resource; the session's own token is not for it.
      throw new BffError('BFF_REFRESH_FAILED', { reason: 'no_refresh_token_for_resource' });
    }
    const id = `${session.key}\n${resource}`;
    const pending = this.resourceInflight.get(id);
    if (pending) {
      this.events.refresh('shared');
      return pending;
    }
    const run = this.resourceUnlessDone(session, resource, rejected).finally(() =>
      this.resourceInflight.delete(id),
    );
    this.resourceInflight.set(id, run);
    return run;
  }

  /**
   * The upstream refused a resource token (401 invalid_token): get another one through forResource,
   * at most once per `minIntervalSec` per session and resource (as renewRejected for the main token).
   */
  async renewRejectedResource(
    used: LoadedSession,
    resource: string,
    rejected: string,
    minIntervalSec: number,
  ): Promise<ResourceGrant | undefined> {
    if (!used.data.refreshToken) {
      this.events.upstreamInvalidToken('no_refresh_token');
      return undefined;
    }
    try {
      const latest = await this.sessions.reload(used.key);
      if (!latest) return undefined;
      const stored = latest.data.resourceTokens?.[resource];
      if (stored && stored.accessToken !== rejected && stored.expiresAt > this.clock()) {
        this.events.upstreamInvalidToken('shared');
        return { session: latest, token: stored };
      }
      if (await this.renewalRateLimited(`${invalidTokenGate(used.key)}:${resource}`, minIntervalSec))
        return undefined;
      const renewed = await this.forResource(latest, resource, rejected);
      if (renewed.token.accessToken === rejected) {
        this.events.upstreamInvalidToken('refresh_failed');
        return undefined;
      }
      this.events.upstreamInvalidToken('refreshed');
      return renewed;
    } catch {
      this.events.upstreamInvalidToken('refresh_failed');
      return undefined;
    }
  }

  /**
   * Whether a renewal after a refused token must wait: at most one per `minIntervalSec` per `gate`
   * across instances (a store key with that TTL, taken here when free). A refusal is counted.
   */
  private async renewalRateLimited(gate: string, minIntervalSec: number): Promise<boolean> {
    if (minIntervalSec <= 0 || (await this.store.setIfAbsent(gate, '1', minIntervalSec * 1000))) return false;
    this.events.upstreamInvalidToken('rate_limited');
    return true;
  }

  /** forResource's grant, once across instances: the same lock protocol as refreshUnlessDone. */
  private resourceUnlessDone(
    seen: LoadedSession,
    resource: string,
    rejected: string | undefined,
  ): Promise<ResourceGrant> {
    const stored = (session: LoadedSession): ResourceGrant | undefined => {
      const token = this.freshResourceToken(session, resource, rejected);
      return token ? { session, token } : undefined;
    };
    return this.underRefreshLock(seen, stored, (current) =>
      this.refreshResource(current, resource, rejected),
    );
  }

  /** The refresh grant with `resource`, under the session's refresh lock. */
  private async refreshResource(
    session: LoadedSession,
    resource: string,
    rejected: string | undefined,
  ): Promise<ResourceGrant> {
    const started = performance.now();
    const refreshToken = session.data.refreshToken;
    if (!refreshToken) throw new BffError('BFF_REFRESH_FAILED', { reason: 'no_refresh_token_for_resource' });
    let tokens: TokenSet;
    try {
      tokens = await this.grant(session, refreshToken, resource);
    } catch (err) {
      // The grant itself is refused (revoked, expired, reused): the session cannot go on, unless
      // another writer rotated the refresh token meanwhile; then retry with the rotated one.
      const latest = await this.onRefreshError(err, session, refreshToken);
      if (latest) {
        // The other writer may have obtained this resource's token as well: use it rather than
        // spend another grant (at an IdP that revokes the grant on reuse, that grant would fail).
        const theirs = this.freshResourceToken(latest, resource, rejected);
        return theirs ? { session: latest, token: theirs } : this.refreshResource(latest, resource, rejected);
      }
      // The IdP is unreachable: keep serving on a resource token that has not expired yet.
      const kept = session.data.resourceTokens?.[resource];
      if (kept && kept.accessToken !== rejected && kept.expiresAt > this.clock())
        return { session, token: kept };
      throw err;
    }
    if (tokens.idToken) await this.idTokenPolicy?.(tokens.idToken);
    const now = this.clock();
    const token: ResourceToken = {
      accessToken: tokens.accessToken,
      tokenType: tokens.tokenType,
      expiresAt: now + tokens.expiresIn * 1000,
    };
    // Expired tokens of other resources are dropped on the way: the record only grows with live ones.
    const kept = Object.entries(session.data.resourceTokens ?? {}).filter(([, t]) => t.expiresAt > now);
    const rotated = rotatedRefreshToken(tokens, refreshToken);
    const next: SessionData = {
      ...session.data,
      refreshToken: tokens.refreshToken ?? refreshToken,
      resourceTokens: { ...Object.fromEntries(kept), [resource]: token },
      trace: afterRefresh(session.data.trace, now, rotated !== undefined),
    };
    const stored = await this.storeRefreshed(session, next, rotated, started);
    return { session: stored, token };
  }

  private async refresh(session: LoadedSession): Promise<LoadedSession> {
    const started = performance.now();
    const refreshToken = session.data.refreshToken as string;
    let tokens: TokenSet;
    try {
      tokens = await this.grant(session, refreshToken);
    } catch (err) {
      // Another writer may already have rotated the token: use its result instead of failing.
      const latest = await this.onRefreshError(err, session, refreshToken);
      if (latest) return latest;
      // The IdP is unreachable: keep serving on a token that has not expired yet.
      if (session.data.accessTokenExpiresAt > this.clock()) return session;
      throw err;
    }
    if (tokens.idToken) await this.idTokenPolicy?.(tokens.idToken);
    const rotated = rotatedRefreshToken(tokens, refreshToken);
    const next: SessionData = {
      ...session.data,
      accessToken: tokens.accessToken,
      tokenType: tokens.tokenType,
      accessTokenExpiresAt: this.clock() + tokens.expiresIn * 1000,
      refreshToken: tokens.refreshToken ?? refreshToken,
      idToken: tokens.idToken ?? session.data.idToken,
      scope: tokens.scope ?? session.data.scope,
      trace: afterRefresh(session.data.trace, this.clock(), rotated !== undefined),
    };
    return this.storeRefreshed(session, next, rotated, started);
  }

  /**
   * The refresh_token grant (RFC 6749 §6, https://www.rfc-editor.org/rfc/rfc6749#section-6), with
   * `resource` for a resource token. The caller applies the ID token policy outside its error
   * handling: a refused ID token is not an unreachable IdP.
   */
  private async grant(session: LoadedSession, refreshToken: string, resource?: string): Promise<TokenSet> {
    return this.idp.refresh(
      refreshToken,
      session.data.identity,
      session.data.dpop ? await this.dpopKeys.get(session.data.dpop) : undefined,
      resource,
    );
  }

  /**
   * Counts and audits a failed grant on `refreshToken`. The grant refused (BFF_REFRESH_FAILED,
   * invalid_grant): returns the session as stored when another writer has rotated the refresh token
   * meanwhile; otherwise ends the session and throws `err`. Anything else (the IdP unreachable):
   * returns undefined, and the caller keeps an unexpired token or throws `err`.
   */
  private async onRefreshError(
    err: unknown,
    session: LoadedSession,
    refreshToken: string,
  ): Promise<LoadedSession | undefined> {
    const who = { sessionKey: session.key, sub: session.data.sub };
    const code = isBffError(err) ? err.code : 'BFF_INTERNAL';
    if (isBffError(err) && err.code === 'BFF_REFRESH_FAILED') {
      this.events.refresh('invalid_grant');
      const latest = await this.sessions.reload(session.key);
      if (latest && latest.data.refreshToken !== refreshToken) return latest;
      this.events.audit?.('refresh.failed', { ...who, code, reason: err.reason ?? 'invalid_grant' });
      await this.end(session, 'refresh_rejected');
      throw err;
    }
    this.events.refresh('failure');
    this.events.audit?.('refresh.failed', {
      ...who,
      code,
      reason: (isBffError(err) ? err.reason : undefined) ?? 'idp_unavailable',
    });
    return undefined;
  }

  /**
   * Stores a refresh's result with compare-and-set (or reads what a sibling stored), counts and
   * audits the refresh. `orphan`: the rotated refresh token, revoked if the session is gone.
   */
  private async storeRefreshed(
    session: LoadedSession,
    next: SessionData,
    orphan: string | undefined,
    started: number,
  ): Promise<LoadedSession> {
    const stored = (await this.sessions.replace(session, next)) ?? (await this.sessions.reload(session.key));
    this.events.refresh('success', (performance.now() - started) / 1000);
    this.events.audit?.('session.refreshed', { sessionKey: session.key, sub: session.data.sub });
    if (!stored) {
      // The session ended while the IdP answered (logout, back-channel logout, expiry): the result is
      // discarded, and a rotated refresh token, which nobody else knows of, is revoked (RFC 7009 §2)
      // rather than left valid after the user logged out.
      if (orphan) await this.revokeOrphan(orphan, session);
      throw new BffError('BFF_SESSION_EXPIRED', { reason: 'gone_during_refresh' });
    }
    return stored;
  }

  private async revokeOrphan(token: string, session: LoadedSession): Promise<void> {
    if (!this.idp.metadata.revocation_endpoint) {
      this.events.revocation('skipped');
      return;
    }
    try {
      await this.idp.revoke(
        token,
        'refresh_token',
        session.data.dpop ? await this.dpopKeys.get(session.data.dpop) : undefined,
      );
      this.events.revocation('success');
    } catch {
      // Counted; the session is gone either way and the caller gets its 401.
      this.events.revocation('failure');
    }
  }

  private async end(session: LoadedSession, reason: string): Promise<void> {
    await this.sessions.destroy(session.key);
    this.events.session('expired');
    this.events.audit?.('session.expired', { sessionKey: session.key, sub: session.data.sub, reason });
  }
}
