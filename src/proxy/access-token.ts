import { BffError, isBffError } from '../errors.js';
import type { DpopKeyCache } from '../oauth/dpop.js';
import type { IdpClient } from '../oauth/idp-client.js';
import type { LoadedSession, SessionData, SessionManager } from '../session/session-manager.js';

export interface RefreshEvents {
  refresh(outcome: 'success' | 'failure' | 'invalid_grant' | 'shared', seconds?: number): void;
  session(event: 'created' | 'ended' | 'expired'): void;
}

/**
 * Keeps a session's access token usable: refreshes shortly before expiry when the token is used.
 * Concurrent requests of one session share one refresh (single-flight per instance), and the
 * rotated refresh token is stored with compare-and-set so a stale writer can never overwrite it
 * (FAPI 2.0 §5.3.3.1-6: support refresh token rotation).
 */
export class AccessTokens {
  private readonly inflight = new Map<string, Promise<LoadedSession>>();

  constructor(
    private readonly idp: IdpClient,
    private readonly sessions: SessionManager,
    private readonly skewSec: number,
    private readonly events: RefreshEvents,
    private readonly dpopKeys: DpopKeyCache,
    private readonly clock: () => number = Date.now,
  ) {}

  async ensureFresh(session: LoadedSession): Promise<LoadedSession> {
    if (session.data.accessTokenExpiresAt - this.skewSec * 1000 > this.clock()) return session;
    if (!session.data.refreshToken) {
      if (session.data.accessTokenExpiresAt > this.clock()) return session;
      await this.end(session.key);
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
   * A request may have read the session just before a sibling's refresh finished: re-read it and
   * reuse that refresh instead of replaying a rotated refresh token (which makes a rotating IdP
   * revoke the whole grant, RFC 9700 §4.14.2).
   */
  private async refreshUnlessDone(seen: LoadedSession): Promise<LoadedSession> {
    const latest = await this.sessions.reload(seen.key);
    if (!latest) throw new BffError('BFF_SESSION_EXPIRED', { reason: 'gone_before_refresh' });
    if (latest.data.accessToken !== seen.data.accessToken) {
      this.events.refresh('shared');
      return latest;
    }
    return this.refresh(latest);
  }

  private async refresh(session: LoadedSession): Promise<LoadedSession> {
    const started = performance.now();
    const refreshToken = session.data.refreshToken as string;
    let tokens: Awaited<ReturnType<IdpClient['refresh']>>;
    try {
      tokens = await this.idp.refresh(
        refreshToken,
        session.data.identity,
        session.data.dpop ? await this.dpopKeys.get(session.data.dpop) : undefined,
      );
    } catch (err) {
      if (isBffError(err) && err.code === 'BFF_REFRESH_FAILED') {
        this.events.refresh('invalid_grant');
        // Another writer may already have rotated the token: use its result instead of failing.
        const latest = await this.sessions.reload(session.key);
        if (latest && latest.data.refreshToken !== refreshToken) return latest;
        await this.end(session.key);
        throw err;
      }
      this.events.refresh('failure');
      // The IdP is unreachable: keep serving on a token that has not expired yet.
      if (session.data.accessTokenExpiresAt > this.clock()) return session;
      throw err;
    }
    const next: SessionData = {
      ...session.data,
      accessToken: tokens.accessToken,
      tokenType: tokens.tokenType,
      accessTokenExpiresAt: this.clock() + tokens.expiresIn * 1000,
      refreshToken: tokens.refreshToken ?? refreshToken,
      idToken: tokens.idToken ?? session.data.idToken,
      scope: tokens.scope ?? session.data.scope,
    };
    const stored = (await this.sessions.replace(session, next)) ?? (await this.sessions.reload(session.key));
    this.events.refresh('success', (performance.now() - started) / 1000);
    if (!stored) throw new BffError('BFF_SESSION_EXPIRED', { reason: 'gone_during_refresh' });
    return stored;
  }

  private async end(key: string): Promise<void> {
    await this.sessions.destroy(key);
    this.events.session('expired');
  }
}
