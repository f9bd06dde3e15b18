import { Redis } from 'ioredis';
import { BffError } from '../errors.js';
import type { KeyValueStore } from './store.js';

export interface RedisStoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface RedisStoreOptions {
  /** `redis://` or `rediss://` (TLS) URL, optionally with credentials and a database number. */
  url: string;
  keyPrefix?: string;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Receives connection errors (rate-limited) and reconnections; without it they are dropped. */
  logger?: RedisStoreLogger;
}

/** Compare-and-set: replace only when the current value equals ARGV[1]. */
const CAS_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`;

/** Add a member and reset the index lifetime in one atomic step. */
const INDEX_ADD_LUA = `
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

type ScriptedRedis = Redis & {
  bffCas(key: string, expected: string, next: string, ttlMs: number): Promise<number>;
  bffIndexAdd(key: string, member: string, ttlMs: number): Promise<number>;
};

const ERROR_LOG_INTERVAL_MS = 10_000;
const TIMEOUTS_BEFORE_RECONNECT = 3;

function checkTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError('ttlMs must be a finite number > 0');
  // PX takes whole milliseconds; rounding up never shortens a lifetime to zero.
  return Math.ceil(ttlMs);
}

/** Safe to log: no URL (it may hold a password) and no stack. */
function describeError(err: unknown): { name: string; message: string; code?: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string'
      ? { name: err.name, message: err.message, code }
      : { name: err.name, message: err.message };
  }
  return { name: 'Error', message: String(err) };
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === 'Command timed out';
}

/**
 * KeyValueStore over Redis (standalone, 6.2+ for GETDEL) for deployments with several replicas.
 *
 * Failure model: a Redis outage must cost a 503, never a hang or a crash.
 * - `enableOfflineQueue: false`: while disconnected, commands fail at once instead of queueing
 *   until Redis returns (a queued request would hang).
 * - `commandTimeout`: a connected but unresponsive Redis fails each command after the timeout;
 *   after a few consecutive timeouts the connection is dropped and rebuilt, because a socket to a
 *   vanished host can stay "open" for many minutes.
 * - `maxRetriesPerRequest: 1`: a command in flight when the connection drops is retried at most
 *   once after reconnecting, still within its timeout.
 * - `retryStrategy` reconnects forever with capped backoff, so the store recovers without a
 *   restart once Redis answers again.
 * - Connection errors go to a rate-limited log line, never to an unhandled 'error' event.
 * Every failed command rejects with `BffError('BFF_STORE_UNAVAILABLE', { cause })`.
 *
 * Startup: the constructor opens nothing (`lazyConnect`). `createRedisStore` (or `connect()`)
 * starts connecting and waits up to `connectTimeoutMs` for Redis to be ready, so the first request
 * does not fail merely because the handshake is still running. If Redis is down at startup the
 * factory still resolves (with a warning): the BFF starts, `ping()` rejects so /readyz reports not
 * ready, requests get 503, and the background reconnection makes everything work as soon as
 * Redis answers.
 *
 * TLS: `rediss://` URLs connect over TLS with Node's default certificate verification (hostname
 * and CA checks stay on).
 *
 * Key layout (several deployments can share one Redis through distinct prefixes):
 *   `<keyPrefix>v:<key>`   string values
 *   `<keyPrefix>i:<index>` set-valued indexes
 * Separate namespaces keep a value and an index with the same name apart (as in MemoryStore)
 * instead of failing with WRONGTYPE.
 */
export class RedisStore implements KeyValueStore {
  readonly kind = 'redis' as const;

  readonly #redis: ScriptedRedis;
  readonly #prefix: string;
  readonly #connectTimeoutMs: number;
  readonly #logger: RedisStoreLogger | undefined;
  #closed = false;
  #lastErrorLogAt = Number.NEGATIVE_INFINITY;
  #errorsSinceLog = 0;
  #consecutiveTimeouts = 0;

  constructor(options: RedisStoreOptions) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(options.url)?.[1]?.toLowerCase();
    if (scheme !== 'redis' && scheme !== 'rediss') {
      throw new TypeError('RedisStore url must start with redis:// or rediss://');
    }
    const commandTimeoutMs = options.commandTimeoutMs ?? 1000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 2000;
    this.#prefix = options.keyPrefix ?? 'bff:';
    this.#logger = options.logger;

    this.#redis = new Redis(options.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: commandTimeoutMs,
      connectTimeout: this.#connectTimeoutMs,
      retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
      // How long a hard disconnect waits for the socket to close before destroying it. ioredis
      // arms this timer even for a socket that already closed (Redis down), which would hold the
      // process open for the 2 s default after close().
      disconnectTimeout: 200,
      // ioredis only enables TLS for a lower-case "rediss://"; the URL scheme is case-insensitive.
      ...(scheme === 'rediss' ? { tls: {} } : {}),
    }) as ScriptedRedis;
    // defineCommand sends EVALSHA and falls back to EVAL on NOSCRIPT (e.g. after a Redis restart).
    this.#redis.defineCommand('bffCas', { numberOfKeys: 1, lua: CAS_LUA });
    this.#redis.defineCommand('bffIndexAdd', { numberOfKeys: 1, lua: INDEX_ADD_LUA });

    this.#redis.on('error', (err: unknown) => this.#onConnectionError(err));
    this.#redis.on('ready', () => {
      if (this.#errorsSinceLog > 0 || this.#lastErrorLogAt !== Number.NEGATIVE_INFINITY) {
        this.#logger?.info({ errorsSinceLastLog: this.#errorsSinceLog }, 'redis store: connection ready');
      }
      this.#errorsSinceLog = 0;
      this.#lastErrorLogAt = Number.NEGATIVE_INFINITY;
    });
  }

  /**
   * Starts connecting (idempotent) and waits until Redis is ready or `connectTimeoutMs` passes.
   * Resolves true when ready, false otherwise; never rejects, because reconnection continues in
   * the background and callers learn about availability from `ping()`.
   */
  async connect(): Promise<boolean> {
    const redis = this.#redis;
    if (this.#closed) return false;
    if (redis.status === 'ready') return true;
    const ready = new Promise<boolean>((resolve) => {
      const onReady = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        redis.off('ready', onReady);
        resolve(false);
      }, this.#connectTimeoutMs);
      timer.unref();
      redis.once('ready', onReady);
    });
    // Failures of this attempt arrive on the 'error' listener; retryStrategy handles the rest.
    if (redis.status === 'wait') redis.connect().catch(() => {});
    const ok = await ready;
    if (!ok) {
      this.#logger?.warn(
        { timeoutMs: this.#connectTimeoutMs },
        'redis store: not ready at startup; requests get 503 until Redis answers',
      );
    }
    return ok;
  }

  async get(key: string): Promise<string | undefined> {
    const value = await this.#run(() => this.#redis.get(this.#valueKey(key)));
    return value ?? undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    const px = checkTtl(ttlMs);
    await this.#run(() => this.#redis.set(this.#valueKey(key), value, 'PX', px));
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const px = checkTtl(ttlMs);
    const reply = await this.#run(() => this.#redis.set(this.#valueKey(key), value, 'PX', px, 'NX'));
    return reply === 'OK';
  }

  async compareAndSet(key: string, expected: string, next: string, ttlMs: number): Promise<boolean> {
    const px = checkTtl(ttlMs);
    const reply = await this.#run(() => this.#redis.bffCas(this.#valueKey(key), expected, next, px));
    return reply === 1;
  }

  async take(key: string): Promise<string | undefined> {
    const value = await this.#run(() => this.#redis.getdel(this.#valueKey(key)));
    return value ?? undefined;
  }

  async delete(key: string): Promise<void> {
    await this.#run(() => this.#redis.del(this.#valueKey(key)));
  }

  async touch(key: string, ttlMs: number): Promise<boolean> {
    const px = checkTtl(ttlMs);
    // A single PEXPIRE is atomic and answers 0 for an absent (or expired) key, so no script is needed.
    const reply = await this.#run(() => this.#redis.pexpire(this.#valueKey(key), px));
    return reply === 1;
  }

  async addToIndex(index: string, member: string, ttlMs: number): Promise<void> {
    const px = checkTtl(ttlMs);
    await this.#run(() => this.#redis.bffIndexAdd(this.#indexKey(index), member, px));
  }

  async indexMembers(index: string): Promise<string[]> {
    return this.#run(() => this.#redis.smembers(this.#indexKey(index)));
  }

  async removeFromIndex(index: string, member: string): Promise<void> {
    await this.#run(() => this.#redis.srem(this.#indexKey(index), member));
  }

  async ping(): Promise<void> {
    await this.#run(() => this.#redis.ping());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const redis = this.#redis;
    if (redis.status === 'ready') {
      try {
        // QUIT lets pending replies arrive; it is bounded by commandTimeout.
        await redis.quit();
        return;
      } catch {
        // Fall through to a hard disconnect.
      }
    }
    redis.disconnect();
  }

  #valueKey(key: string): string {
    return `${this.#prefix}v:${key}`;
  }

  #indexKey(index: string): string {
    return `${this.#prefix}i:${index}`;
  }

  async #run<T>(command: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new BffError('BFF_STORE_UNAVAILABLE', { detail: 'store closed' });
    try {
      const result = await command();
      this.#consecutiveTimeouts = 0;
      return result;
    } catch (cause) {
      if (isTimeout(cause)) this.#onTimeout();
      throw new BffError('BFF_STORE_UNAVAILABLE', { cause });
    }
  }

  #onTimeout(): void {
    this.#consecutiveTimeouts++;
    if (this.#consecutiveTimeouts < TIMEOUTS_BEFORE_RECONNECT || this.#redis.status !== 'ready') return;
    this.#consecutiveTimeouts = 0;
    this.#logger?.warn(
      { consecutiveTimeouts: TIMEOUTS_BEFORE_RECONNECT },
      'redis store: commands time out; reconnecting',
    );
    // reconnect=true keeps retryStrategy in charge instead of closing for good.
    this.#redis.disconnect(true);
  }

  #onConnectionError(err: unknown): void {
    // While Redis is down every reconnection attempt fails; one line per interval is enough.
    this.#errorsSinceLog++;
    const now = Date.now();
    if (now - this.#lastErrorLogAt < ERROR_LOG_INTERVAL_MS) return;
    this.#logger?.warn(
      { err: describeError(err), errorsSinceLastLog: this.#errorsSinceLog },
      'redis store: connection error',
    );
    this.#lastErrorLogAt = now;
    this.#errorsSinceLog = 0;
  }
}

/** A RedisStore that has had up to `connectTimeoutMs` to connect; resolves even if Redis is down. */
export async function createRedisStore(options: RedisStoreOptions): Promise<RedisStore> {
  const store = new RedisStore(options);
  await store.connect();
  return store;
}
