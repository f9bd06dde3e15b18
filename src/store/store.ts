/**
 * The one interface every piece of server-side state goes through: sessions, login transactions,
 * replay caches, locks and indexes. Values are opaque strings (the session layer encrypts before it
 * stores, so an implementation never sees a token in clear).
 *
 * Every implementation must pass test/contract/store.contract.ts unchanged. Failures of the backing
 * service surface as `BffError('BFF_STORE_UNAVAILABLE')` (503), never as a crash or a hang: callers
 * map that to a clean error and nothing is lost.
 */
export interface KeyValueStore {
  readonly kind: 'memory' | 'redis';

  /**
   * Change notices between instances sharing this store, for per-process caches of its values;
   * absent when the store has none (then a cache must re-read the store on every use).
   */
  readonly changes?: ChangeFeed;

  /** The value, or undefined when absent or expired. */
  get(key: string): Promise<string | undefined>;

  /** Store a value with a time-to-live in milliseconds (> 0). */
  set(key: string, value: string, ttlMs: number): Promise<void>;

  /**
   * `set` that returns only once the write is replicated as configured (Redis `WAIT`), for records
   * a failover must not lose (sessions at login). Optional: stores without replicas omit it.
   */
  setDurable?(key: string, value: string, ttlMs: number): Promise<void>;

  /** `compareAndSet` replicated like `setDurable` (a rotated refresh token). Optional. */
  compareAndSetDurable?(key: string, expected: string, next: string, ttlMs: number): Promise<boolean>;

  /** Store only when the key is absent; true when stored. For replay caches and locks. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;

  /**
   * Replace the value only when it currently equals `expected` (atomic compare-and-set); true when
   * replaced. Used to store a rotated refresh token without losing a concurrent update.
   */
  compareAndSet(key: string, expected: string, next: string, ttlMs: number): Promise<boolean>;

  /** Atomically read and delete: single-use records such as login transactions (RFC 6749 §10.12). */
  take(key: string): Promise<string | undefined>;

  /** Delete a key (no error if absent). */
  delete(key: string): Promise<void>;

  /** Reset the time-to-live of an existing key; false when the key is absent. */
  touch(key: string, ttlMs: number): Promise<boolean>;

  /** Add a member to a set-valued index (e.g. sessions by IdP `sid` or `sub`); the index expires after ttlMs. */
  addToIndex(index: string, member: string, ttlMs: number): Promise<void>;

  /** Members of an index (empty when absent). */
  indexMembers(index: string): Promise<string[]>;

  /** Remove a member from an index. */
  removeFromIndex(index: string, member: string): Promise<void>;

  /** Resolves when the backing service answers; rejects with BFF_STORE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;

  /** Release connections and timers. */
  close(): Promise<void>;
}

/**
 * Tells every instance sharing a store that a key changed, so a process may serve a value from its
 * own memory instead of reading the store on every request, and still see another instance's
 * logout or refresh within milliseconds.
 *
 * The rule for a cache: use an entry only while `live` is true and `epoch` equals the epoch the
 * entry was read in. Whenever delivery can no longer be guaranteed (connection lost, subscription
 * not confirmed, heartbeat missed) `live` turns false, `epoch` moves on and reset listeners run,
 * so nothing read before the gap is ever served from memory again.
 */
export interface ChangeFeed {
  readonly live: boolean;
  readonly epoch: number;
  /** Tell every instance (this one included, asynchronously) that `key` changed. Never rejects. */
  publish(key: string): Promise<void>;
  /** `key` changed somewhere. */
  onChange(listener: (key: string) => void): void;
  /** Delivery was interrupted: drop everything cached. */
  onReset(listener: () => void): void;
}

/** A monotonic-enough wall clock in milliseconds; injectable so tests can move time. */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();
