import { createHash, randomBytes } from 'node:crypto';
import type { LoginTrace } from './login-trace.js';
import { BffError } from '../errors.js';
import type { StoredDpopKey } from '../dpop/client.js';
import type { SessionSealer } from './sealing.js';
import type { ChangeFeed, Clock, KeyValueStore } from '../store/store.js';

/** What the server keeps for a signed-in browser. Encrypted at rest; never sent to the browser. */
export interface SessionData {
  v: 1;
  sub: string;
  /** The IdP's `sid` when it sent one (back-channel logout), otherwise our own random value. */
  sid: string;
  /** ID token claims shown by GET /auth/session (no tokens). */
  claims: Record<string, unknown>;
  /** iss, sub, aud, azp, auth_time of the login ID token: a refreshed one must match (OIDC Core §12.2). */
  identity: Record<string, unknown>;
  idToken: string | undefined;
  accessToken: string;
  tokenType: 'bearer' | 'dpop';
  /** Epoch ms. */
  accessTokenExpiresAt: number;
  refreshToken: string | undefined;
  scope: string | undefined;
  /** The session's DPoP key pair (private part sealed with the record); absent for Bearer sessions. */
  dpop?: StoredDpopKey | undefined;
  /**
   * Access tokens for single RFC 8707 resources (https://www.rfc-editor.org/rfc/rfc8707#section-2.2),
   * by resource: routes with `resource` send these instead of `accessToken`.
   */
  resourceTokens?: Record<string, ResourceToken> | undefined;
  /** What the login did and refreshes since (protocol facts only), for the development inspector. */
  trace?: LoginTrace | undefined;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms; the session ends then, whatever the activity. */
  absoluteExpiresAt: number;
}

/** An access token restricted to one resource (refresh grant with `resource`). */
export interface ResourceToken {
  accessToken: string;
  tokenType: 'bearer' | 'dpop';
  /** Epoch ms. */
  expiresAt: number;
}

export interface LoadedSession {
  /** Store key (a hash of the id: a store dump yields no usable cookie). */
  readonly key: string;
  /** The sealed value as read, for compare-and-set. */
  readonly sealed: string;
  readonly data: SessionData;
}

export interface SessionTimeouts {
  readonly idleTimeoutSec: number;
  readonly absoluteTimeoutSec: number;
}

const COOKIE_VERSION = 'v1';
/**
 * Opened sessions are memoised per process (MAC checked, decrypted, parsed: ~100 µs of CPU).
 * With a live change feed (Redis pub/sub) a memoised session is served without any store round
 * trip: every write to a session (refresh, logout, back-channel logout) publishes its key and every
 * instance drops its copy on receipt; a feed that is not live (disconnected, heartbeat missed)
 * drops every copy and the memo falls back to reading the store on every request and using the
 * memo only while the store still holds the identical sealed value. Bounded in size and age: the
 * decrypted records of recently active sessions stay in this process's memory that long.
 */
const OPENED_MAX = 10_000;
const OPENED_TTL_MS = 60_000;
/** Renew the idle TTL at most this often per session per instance: a store write per request is waste. */
const TOUCH_INTERVAL_FRACTION = 20;
const MAX_TOUCH_ENTRIES = 50_000;

/**
 * Server-side sessions behind an opaque, MAC'd cookie ticket `v1.<id>.<mac>` (after oauth2-proxy's
 * ticket): a forged or tampered cookie is refused before any store lookup; the store key is a hash
 * of the id and the record is sealed (AES-256-GCM) with the key bound as AAD.
 */
export class SessionManager {
  private readonly lastTouch = new Map<string, number>();
  /** By cookie value; `epoch` is the feed epoch the entry was read in, undefined when not covered by the feed. */
  private readonly opened = new Map<
    string,
    { session: LoadedSession; at: number; epoch: number | undefined }
  >();
  /** Store key → cookie value of its memo entry, to drop it when the key's change is announced. */
  private readonly cookieByKey = new Map<string, string>();
  /** Change notices counted, and the count at each key's last notice (reads racing a notice are not trusted). */
  private changesSeen = 0;
  private readonly lastChange = new Map<string, number>();
  private readonly feed: ChangeFeed | undefined;
  private readonly endListeners = new Set<(key: string) => void>();

  constructor(
    private readonly store: KeyValueStore,
    private readonly sealer: SessionSealer,
    private readonly timeouts: SessionTimeouts,
    private readonly clock: Clock = Date.now,
    /** Told when a session is found past its absolute lifetime and removed. */
    private readonly onExpired: (session: LoadedSession) => void = () => undefined,
  ) {
    this.feed = store.changes;
    this.feed?.onChange((key) => {
      this.changesSeen++;
      if (this.lastChange.size >= OPENED_MAX) this.lastChange.clear();
      this.lastChange.set(key, this.changesSeen);
      this.forget(key);
    });
    this.feed?.onReset(() => {
      this.opened.clear();
      this.cookieByKey.clear();
    });
  }

  /** Served from memory without a store read: the feed is live and the entry was read in its current epoch. */
  private trusted(entry: { at: number; epoch: number | undefined }, now: number): boolean {
    const feed = this.feed;
    return (
      feed !== undefined &&
      feed.live &&
      entry.epoch !== undefined &&
      entry.epoch === feed.epoch &&
      now - entry.at < OPENED_TTL_MS
    );
  }

  /** The feed epoch a read starting now may be cached under (undefined: not live). */
  private readMark(): { epoch: number | undefined; seen: number } {
    return { epoch: this.feed?.live ? this.feed.epoch : undefined, seen: this.changesSeen };
  }

  /** The epoch to store with a value read under `mark`, or undefined when a change or a gap raced the read. */
  private epochAfterRead(key: string, mark: { epoch: number | undefined; seen: number }): number | undefined {
    if (mark.epoch === undefined || !this.feed?.live || this.feed.epoch !== mark.epoch) return undefined;
    if (this.changesSeen !== mark.seen && (this.lastChange.get(key) ?? 0) > mark.seen) return undefined;
    return mark.epoch;
  }

  private forget(key: string): void {
    const cookie = this.cookieByKey.get(key);
    if (cookie === undefined) return;
    this.cookieByKey.delete(key);
    this.opened.delete(cookie);
  }

  /**
   * Create a session under a brand-new random id (256 bits): the id is never taken from the
   * request, so a pre-set cookie cannot fix the session (session fixation, OWASP ASVS 3.2.1).
   */
  async create(
    fields: Omit<SessionData, 'v' | 'createdAt' | 'absoluteExpiresAt'>,
  ): Promise<{ cookieValue: string; session: LoadedSession }> {
    const id = randomBytes(32).toString('base64url');
    const now = this.clock();
    const data: SessionData = {
      ...fields,
      v: 1,
      createdAt: now,
      absoluteExpiresAt: now + this.timeouts.absoluteTimeoutSec * 1000,
    };
    const key = storeKey(id);
    const sealed = this.sealer.seal(JSON.stringify(data), key);
    const ttl = this.ttlMs(data, now);
    // Indexes for back-channel logout (OIDC BCL 1.0 §2.7): every session of an IdP sid or sub, on
    // every instance sharing the store. They live as long as the longest possible session. Written
    // before the session so the WAIT below covers them too where they share its connection
    // (standalone, Sentinel); an index entry without its session is harmless (destroyBy checks).
    const indexTtl = data.absoluteExpiresAt - now;
    await this.store.addToIndex(sidIndex(data.sid), key, indexTtl);
    await this.store.addToIndex(subIndex(data.sub), key, indexTtl);
    // Replicated before the browser gets its cookie (WAIT on a replicated store): a failover right
    // after login must not lose the session.
    if (this.store.setDurable) await this.store.setDurable(key, sealed, ttl);
    else await this.store.set(key, sealed, ttl);
    this.lastTouch.set(key, now);
    const body = `${COOKIE_VERSION}.${id}`;
    return { cookieValue: `${body}.${this.sealer.mac(body)}`, session: { key, sealed, data } };
  }

  /** Resolve a cookie to a live session, or undefined (absent, forged, expired). Store outages throw. */
  async load(cookieValue: string | undefined): Promise<LoadedSession | undefined> {
    if (!cookieValue) return undefined;
    const memo = this.opened.get(cookieValue);
    let session: LoadedSession | undefined;
    if (memo && this.trusted(memo, this.clock())) {
      session = memo.session;
    } else if (memo && this.clock() - memo.at < OPENED_TTL_MS) {
      const mark = this.readMark();
      const sealed = await this.store.get(memo.session.key);
      if (sealed === undefined) {
        this.forget(memo.session.key);
        return undefined;
      }
      if (sealed === memo.session.sealed) {
        session = memo.session;
        const epoch = this.epochAfterRead(session.key, mark);
        if (epoch !== undefined) memo.epoch = epoch;
      } else {
        session = this.open(memo.session.key, sealed);
        if (!session) return undefined;
        this.remember(cookieValue, session, this.epochAfterRead(session.key, mark));
      }
    } else {
      const id = this.parseTicket(cookieValue);
      if (id === undefined) return undefined;
      const key = storeKey(id);
      const mark = this.readMark();
      const sealed = await this.store.get(key);
      if (sealed === undefined) return undefined;
      session = this.open(key, sealed);
      if (!session) return undefined;
      this.remember(cookieValue, session, this.epochAfterRead(key, mark));
    }
    const now = this.clock();
    if (now >= session.data.absoluteExpiresAt) {
      await this.destroy(session.key);
      this.onExpired(session);
      return undefined;
    }
    // Most calls are within the touch interval: no promise to wait for then.
    const touching = this.maybeTouch(session, now);
    if (touching) await touching;
    return session;
  }

  /**
   * What `load` would return for this cookie when it needs nothing asynchronous: the session is
   * served from memory (the change feed vouches for it, see `trusted`), within its absolute
   * lifetime, and no touch is due. Otherwise undefined, and the caller uses `load`. No side effects.
   * The API proxy's hot path (Redis with a live feed) saves its promises this way.
   */
  cached(cookieValue: string | undefined): LoadedSession | undefined {
    if (!cookieValue) return undefined;
    const memo = this.opened.get(cookieValue);
    if (!memo) return undefined;
    const now = this.clock();
    if (!this.trusted(memo, now)) return undefined;
    const session = memo.session;
    if (now >= session.data.absoluteExpiresAt || this.touchDue(session, now)) return undefined;
    return session;
  }

  /** Re-read a session by key (e.g. after losing a compare-and-set to a concurrent refresh). */
  async reload(key: string): Promise<LoadedSession | undefined> {
    const sealed = await this.store.get(key);
    return sealed === undefined ? undefined : this.open(key, sealed);
  }

  /**
   * Replace the record only if nobody changed it since `current` was read (atomic CAS): a rotated
   * refresh token is never overwritten by a stale copy. Returns the new session, or undefined
   * when another writer won (the caller re-reads).
   */
  async replace(current: LoadedSession, next: SessionData): Promise<LoadedSession | undefined> {
    const sealed = this.sealer.seal(JSON.stringify(next), current.key);
    const ttl = this.ttlMs(next, this.clock());
    // A rotated refresh token must survive a failover: the old one is already spent at the IdP.
    const ok = this.store.compareAndSetDurable
      ? await this.store.compareAndSetDurable(current.key, current.sealed, sealed, ttl)
      : await this.store.compareAndSet(current.key, current.sealed, sealed, ttl);
    this.forget(current.key);
    await this.feed?.publish(current.key);
    return ok ? { key: current.key, sealed, data: next } : undefined;
  }

  /**
   * Remove a session and return what the store held at that instant (atomic read-and-delete): the
   * caller revokes exactly the refresh token that was current, even if a refresh stored a rotated
   * one after the caller first read the session.
   */
  async take(key: string): Promise<LoadedSession | undefined> {
    this.lastTouch.delete(key);
    this.forget(key);
    const sealed = await this.store.take(key);
    await this.ended(key);
    return sealed === undefined ? undefined : this.open(key, sealed);
  }

  async destroy(key: string): Promise<void> {
    this.lastTouch.delete(key);
    this.forget(key);
    await this.store.delete(key);
    await this.ended(key);
  }

  /**
   * Every way a session ends (destroy, take) ends it everywhere: other instances drop their cached
   * copy (the change feed) and this process's long-lived holders (WebSockets) are told.
   */
  private async ended(key: string): Promise<void> {
    await this.feed?.publish(key);
    for (const listener of this.endListeners) listener(key);
  }

  /**
   * Be told when this process ends a session (logout, back-channel logout, expiry, failed refresh):
   * long-lived connections of that session (WebSockets) close at once. Sessions ended by another
   * instance are not announced here; such holders re-check with `reload`. Returns an unsubscribe.
   */
  onEnded(listener: (key: string) => void): () => void {
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }

  /**
   * Store keys of every session of an IdP session id and/or subject, from the indexes kept for
   * back-channel logout (OIDC BCL 1.0 §2.7). With both, only sessions matching both (BCL §2.6: sid
   * narrows sub). Keys of sessions that already ended may be among them.
   */
  async keysOf(selector: { sid?: string; sub?: string }): Promise<string[]> {
    const bySid =
      selector.sid !== undefined ? await this.store.indexMembers(sidIndex(selector.sid)) : undefined;
    const bySub =
      selector.sub !== undefined ? await this.store.indexMembers(subIndex(selector.sub)) : undefined;
    return bySid && bySub ? bySid.filter((k) => bySub.includes(k)) : (bySid ?? bySub ?? []);
  }

  /** Drop ended sessions' keys from the indexes of `selector` (after keysOf and destroy/take). */
  async forgetIndex(selector: { sid?: string; sub?: string }, keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      if (selector.sid !== undefined) await this.store.removeFromIndex(sidIndex(selector.sid), key);
      if (selector.sub !== undefined) await this.store.removeFromIndex(subIndex(selector.sub), key);
    }
  }

  /**
   * End every session of an IdP session id and/or subject (back-channel logout; `fapi-bff sessions
   * revoke`). Returns how many ended.
   */
  async destroyBy(selector: { sid?: string; sub?: string }): Promise<number> {
    const keys = await this.keysOf(selector);
    let ended = 0;
    for (const key of keys) {
      if ((await this.store.get(key)) !== undefined) ended++;
      await this.destroy(key);
    }
    await this.forgetIndex(selector, keys);
    return ended;
  }

  private remember(cookieValue: string, session: LoadedSession, epoch: number | undefined): void {
    if (this.opened.size >= OPENED_MAX) {
      const [oldestCookie, oldest] = this.opened.entries().next().value as [
        string,
        { session: LoadedSession },
      ];
      this.opened.delete(oldestCookie);
      this.cookieByKey.delete(oldest.session.key);
    }
    this.opened.set(cookieValue, { session, at: this.clock(), epoch });
    this.cookieByKey.set(session.key, cookieValue);
  }

  private parseTicket(value: string | undefined): string | undefined {
    if (!value || value.length > 200) return undefined;
    const parts = value.split('.');
    if (parts.length !== 3 || parts[0] !== COOKIE_VERSION) return undefined;
    const [version, id, mac] = parts as [string, string, string];
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    return this.sealer.verifyMac(`${version}.${id}`, mac) ? id : undefined;
  }

  private open(key: string, sealed: string): LoadedSession | undefined {
    const plain = this.sealer.open(sealed, key);
    if (plain === undefined) return undefined;
    try {
      const data = JSON.parse(plain) as SessionData;
      return data.v === 1 ? { key, sealed, data } : undefined;
    } catch {
      return undefined;
    }
  }

  private touchDue(session: LoadedSession, now: number): boolean {
    const last = this.lastTouch.get(session.key);
    const interval = (this.timeouts.idleTimeoutSec * 1000) / TOUCH_INTERVAL_FRACTION;
    return last === undefined || now - last >= interval;
  }

  private ttlMs(data: SessionData, now: number): number {
    return Math.max(1, Math.min(this.timeouts.idleTimeoutSec * 1000, data.absoluteExpiresAt - now));
  }

  /**
   * Sliding idle timeout: the store TTL is renewed, at most every idle/20, never past the absolute
   * limit. Returns the renewal to wait for, or undefined when none is due (the common case).
   */
  private maybeTouch(session: LoadedSession, now: number): Promise<void> | undefined {
    if (!this.touchDue(session, now)) return undefined;
    if (this.lastTouch.size >= MAX_TOUCH_ENTRIES) this.lastTouch.clear();
    this.lastTouch.set(session.key, now);
    return this.store.touch(session.key, this.ttlMs(session.data, now)).then((alive) => {
      if (!alive) throw new BffError('BFF_SESSION_EXPIRED');
    });
  }
}

function sidIndex(sid: string): string {
  return `sid:${createHash('sha256').update(sid).digest('base64url')}`;
}

function subIndex(sub: string): string {
  return `sub:${createHash('sha256').update(sub).digest('base64url')}`;
}

function storeKey(id: string): string {
  return `s:${createHash('sha256').update(id).digest('base64url')}`;
}
