import { BffError } from '../errors.js';
import { MemoryPartition } from './memory-partition.js';
import { type Clock, type KeyValueStore, systemClock } from './store.js';

/**
 * The kinds of record the BFF keeps, each with its own bound in memory. A flood of one kind can
 * then never push out another: unauthenticated logins fill only `transactions`, DPoP proofs and
 * JARM/back-channel-logout replay entries only `replay`, and neither can evict a session, a
 * refresh lock or a replay entry that is still needed.
 */
export type MemoryPartitionName = 'sessions' | 'transactions' | 'replay' | 'locks' | 'nonces';

/**
 * Key prefixes of each kind, as written by their owners (session-manager, login-transaction,
 * dpop-validation, jarm, logout-token, access-token, dpop). Anything else (sessions and their
 * sid/sub indexes) belongs to `sessions`.
 */
const PREFIXES: readonly (readonly [string, MemoryPartitionName])[] = [
  ['t:', 'transactions'],
  ['dpopjti:', 'replay'],
  ['jarm:', 'replay'],
  ['bcl:', 'replay'],
  ['refresh-lock:', 'locks'],
  ['dpopnonce:', 'nonces'],
];

/**
 * A replay cache that forgot a live entry would accept the replay, and a lost refresh lock lets
 * two refreshers replay one refresh token: those refuse writes when full (503, fail closed).
 * Sessions, transactions and the upstream nonce cache evict the entry that expires soonest.
 */
const WHEN_FULL: Readonly<Record<MemoryPartitionName, 'evict' | 'refuse'>> = {
  sessions: 'evict',
  transactions: 'evict',
  replay: 'refuse',
  locks: 'refuse',
  nonces: 'evict',
};

/** One upstream nonce per resource-server origin: a handful. */
const DEFAULT_MAX_NONCES = 1_000;

export interface MemoryStoreOptions {
  /** Bound of the `sessions` partition (values plus indexes); the default of every other partition. */
  maxEntries?: number;
  /** Bounds of individual partitions, overriding the defaults. */
  limits?: Partial<Record<MemoryPartitionName, number>>;
  clock?: Clock;
  /** How often expired entries are reclaimed in the background; 0 disables the sweep. */
  sweepIntervalMs?: number;
}

const DEFAULT_MAX_ENTRIES = 100_000;
const DEFAULT_SWEEP_INTERVAL_MS = 30_000;

/** The partition a key belongs to. */
export function memoryPartitionOf(key: string): MemoryPartitionName {
  // A frontend's namespace (store/namespaced.ts, `f:<name>:`) comes before the owner's prefix.
  const bare = key.replace(/^f:[a-z0-9-]+:/, '');
  for (const [prefix, name] of PREFIXES) if (bare.startsWith(prefix)) return name;
  return 'sessions';
}

/**
 * In-process store for a single replica (development, tests, small deployments): one bounded
 * MemoryPartition per kind of record (see MemoryPartitionName), chosen by key prefix.
 */
export class MemoryStore implements KeyValueStore {
  readonly kind = 'memory' as const;

  readonly #partitions: Readonly<Record<MemoryPartitionName, MemoryPartition>>;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    const sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    if (!Number.isFinite(sweepIntervalMs) || sweepIntervalMs < 0) {
      throw new RangeError('sweepIntervalMs must be a finite number >= 0');
    }
    const clock = options.clock ?? systemClock;
    const make = (name: MemoryPartitionName, fallback: number) =>
      new MemoryPartition({
        name,
        maxEntries: options.limits?.[name] ?? fallback,
        whenFull: WHEN_FULL[name],
        clock,
      });
    this.#partitions = {
      sessions: make('sessions', maxEntries),
      transactions: make('transactions', maxEntries),
      replay: make('replay', maxEntries),
      locks: make('locks', maxEntries),
      nonces: make('nonces', Math.min(maxEntries, DEFAULT_MAX_NONCES)),
    };
    if (sweepIntervalMs > 0) {
      this.#timer = setInterval(() => this.sweep(), sweepIntervalMs);
      // The sweep is housekeeping: it must never keep the process alive on shutdown.
      this.#timer.unref();
    }
  }

  /** Entries currently held in every partition, including expired ones not yet reclaimed. */
  get size(): number {
    let total = 0;
    for (const p of Object.values(this.#partitions)) total += p.size;
    return total;
  }

  /** Entries currently held in one partition. */
  sizeOf(name: MemoryPartitionName): number {
    return this.#partitions[name].size;
  }

  async get(key: string): Promise<string | undefined> {
    return this.#for(key).get(key);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.#for(key).set(key, value, ttlMs);
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.#for(key).setIfAbsent(key, value, ttlMs);
  }

  async compareAndSet(key: string, expected: string, next: string, ttlMs: number): Promise<boolean> {
    return this.#for(key).compareAndSet(key, expected, next, ttlMs);
  }

  async take(key: string): Promise<string | undefined> {
    return this.#for(key).take(key);
  }

  async delete(key: string): Promise<void> {
    this.#for(key).delete(key);
  }

  async touch(key: string, ttlMs: number): Promise<boolean> {
    return this.#for(key).touch(key, ttlMs);
  }

  async addToIndex(index: string, member: string, ttlMs: number): Promise<void> {
    this.#for(index).addToIndex(index, member, ttlMs);
  }

  async indexMembers(index: string): Promise<string[]> {
    return this.#for(index).indexMembers(index);
  }

  async removeFromIndex(index: string, member: string): Promise<void> {
    this.#for(index).removeFromIndex(index, member);
  }

  async ping(): Promise<void> {
    this.#assertOpen();
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#closed = true;
    for (const p of Object.values(this.#partitions)) p.clear();
  }

  /** Reclaims expired entries (called by the timer; public so callers can force it). */
  sweep(): void {
    for (const p of Object.values(this.#partitions)) p.sweep();
  }

  #for(key: string): MemoryPartition {
    this.#assertOpen();
    return this.#partitions[memoryPartitionOf(key)];
  }

  #assertOpen(): void {
    // Mirrors RedisStore after quit(), so a late request during shutdown gets a clean 503.
    if (this.#closed) throw new BffError('BFF_STORE_UNAVAILABLE', { detail: 'store closed' });
  }
}
