import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { BffError } from '../errors.js';
import { RedisChangeFeed } from './redis-change-feed.js';
import type { KeyValueStore } from './store.js';

export interface RedisStoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface RedisEndpoint {
  host: string;
  port: number;
}

/** TLS to Redis beyond a bare `rediss://`: a private CA, a client certificate, the expected server name. */
export interface RedisTlsOptions {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  /** Name checked against the server certificate (and sent as SNI) when it differs from the host. */
  servername?: string | undefined;
}

/**
 * Where Redis is. Standalone by URL; Sentinel by sentinel addresses and master name (the client asks
 * the sentinels for the current master and follows failovers); Cluster by seed nodes (the client
 * learns the slot map and follows MOVED/ASK and failovers).
 */
export type RedisTopology =
  | { kind: 'standalone'; url: string }
  | {
      kind: 'sentinel';
      sentinels: RedisEndpoint[];
      masterName: string;
      sentinelUsername?: string | undefined;
      sentinelPassword?: string | undefined;
    }
  | { kind: 'cluster'; nodes: RedisEndpoint[] };

export interface RedisStoreOptions {
  /** `redis://` or `rediss://` (TLS) URL, optionally with credentials and a database number. */
  url?: string;
  /** Sentinel or Cluster (or standalone); `url` is shorthand for a standalone topology. */
  topology?: RedisTopology;
  /** ACL user and password for the data nodes (a URL may carry them too). */
  username?: string | undefined;
  password?: string | undefined;
  /** TLS with a private CA and/or client certificate; implied by `rediss://`. */
  tls?: RedisTlsOptions | undefined;
  /**
   * Session writes at login and refresh wait for this many replicas to acknowledge (`WAIT`), so a
   * failover right after cannot lose them. 0 disables (standalone default: there is no replica).
   */
  durableReplicas?: number;
  /** Upper bound of that wait; on timeout the write stands and a warning is counted, never a failure. */
  durableTimeoutMs?: number;
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

type Scripted = {
  bffCas(key: string, expected: string, next: string, ttlMs: number): Promise<number>;
  bffIndexAdd(key: string, member: string, ttlMs: number): Promise<number>;
};
/** Standalone and Sentinel give a Redis, Cluster a Cluster: both speak the same commands. */
type Client = (Redis | Cluster) & Scripted;

const ERROR_LOG_INTERVAL_MS = 10_000;
const TIMEOUTS_BEFORE_RECONNECT = 3;
/** Pause before reconnecting a client that ioredis closed for good (see #onEnd). */
const RECONNECT_AFTER_END_MS = 200;

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

/** Node TLS options, or undefined when nothing beyond the defaults is asked for. */
function tlsOptions(tls: RedisTlsOptions | undefined): ConnectionOptions | undefined {
  if (tls === undefined) return undefined;
  const out: ConnectionOptions = {};
  if (tls.ca !== undefined) out.ca = tls.ca;
  if (tls.cert !== undefined) out.cert = tls.cert;
  if (tls.key !== undefined) out.key = tls.key;
  if (tls.servername !== undefined) out.servername = tls.servername;
  // Hostname and CA checks stay on (Node's defaults); a client certificate never replaces them.
  return out;
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
  readonly topology: RedisTopology['kind'];
  /** Cross-instance change notices for per-process caches (see RedisChangeFeed). */
  readonly changes: RedisChangeFeed;

  readonly #redis: Client;
  readonly #prefix: string;
  readonly #connectTimeoutMs: number;
  readonly #durableReplicas: number;
  readonly #durableTimeoutMs: number;
  readonly #logger: RedisStoreLogger | undefined;
  #closed = false;
  #lastErrorLogAt = Number.NEGATIVE_INFINITY;
  #errorsSinceLog = 0;
  #consecutiveTimeouts = 0;
  #durableShortfalls = 0;

  constructor(options: RedisStoreOptions) {
    const topology: RedisTopology = options.topology ?? {
      kind: 'standalone',
      url: options.url ?? 'redis://127.0.0.1:6379',
    };
    if (options.topology === undefined && options.url === undefined) {
      throw new TypeError('RedisStore needs a url or a topology');
    }
    this.topology = topology.kind;
    const commandTimeoutMs = options.commandTimeoutMs ?? 1000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 2000;
    this.#prefix = options.keyPrefix ?? 'bff:';
    this.#logger = options.logger;
    this.#durableReplicas = options.durableReplicas ?? 0;
    this.#durableTimeoutMs = options.durableTimeoutMs ?? 500;

    const common: RedisOptions = {
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
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
    };
    const tls = tlsOptions(options.tls);
    let connectionOptions: RedisOptions;
    if (topology.kind === 'standalone') {
      const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(topology.url)?.[1]?.toLowerCase();
      if (scheme !== 'redis' && scheme !== 'rediss') {
        throw new TypeError('RedisStore url must start with redis:// or rediss://');
      }
      // ioredis only enables TLS for a lower-case "rediss://"; the URL scheme is case-insensitive.
      const useTls = scheme === 'rediss' || tls !== undefined;
      connectionOptions = { ...common, ...(useTls ? { tls: tls ?? {} } : {}) };
      this.#redis = new Redis(topology.url, connectionOptions) as Client;
    } else if (topology.kind === 'sentinel') {
      if (topology.sentinels.length === 0) throw new TypeError('RedisStore needs at least one sentinel');
      connectionOptions = {
        ...common,
        sentinels: topology.sentinels,
        name: topology.masterName,
        ...(topology.sentinelUsername !== undefined ? { sentinelUsername: topology.sentinelUsername } : {}),
        ...(topology.sentinelPassword !== undefined ? { sentinelPassword: topology.sentinelPassword } : {}),
        // The sentinels are asked again on every reconnection; failoverDetector also listens for
        // +switch-master so the client leaves a demoted master at once instead of at the next error.
        failoverDetector: true,
        sentinelRetryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
        sentinelReconnectStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
        sentinelCommandTimeout: commandTimeoutMs,
        ...(tls ? { tls, enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
      };
      this.#redis = new Redis(connectionOptions) as Client;
    } else {
      if (topology.nodes.length === 0) throw new TypeError('RedisStore needs at least one cluster node');
      connectionOptions = { ...common, ...(tls ? { tls } : {}) };
      const { lazyConnect: _l, enableOfflineQueue: _o, retryStrategy: _r, ...perNode } = connectionOptions;
      this.#redis = new Cluster(topology.nodes, {
        lazyConnect: true,
        enableOfflineQueue: false,
        clusterRetryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
        // After a node failure the slot map is refreshed and the command retried on the promoted
        // replica; these bound how long a command keeps trying before it fails with a 503.
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 100,
        retryDelayOnTryAgain: 100,
        maxRedirections: 16,
        slotsRefreshTimeout: commandTimeoutMs,
        slotsRefreshInterval: 5000,
        redisOptions: perNode,
      }) as Client;
    }
    // defineCommand sends EVALSHA and falls back to EVAL on NOSCRIPT (e.g. after a Redis restart).
    // Both scripts touch exactly one key (declared in KEYS), so they are valid on a Cluster.
    this.#redis.defineCommand('bffCas', { numberOfKeys: 1, lua: CAS_LUA });
    this.#redis.defineCommand('bffIndexAdd', { numberOfKeys: 1, lua: INDEX_ADD_LUA });

    this.#redis.on('error', (err: unknown) => this.#onConnectionError(err));
    this.#redis.on('end', () => this.#onEnd());
    this.#redis.on('node error', (err: unknown) => this.#onConnectionError(err));
    this.#redis.on('ready', () => {
      if (this.#errorsSinceLog > 0 || this.#lastErrorLogAt !== Number.NEGATIVE_INFINITY) {
        this.#logger?.info({ errorsSinceLastLog: this.#errorsSinceLog }, 'redis store: connection ready');
      }
      this.#errorsSinceLog = 0;
      this.#lastErrorLogAt = Number.NEGATIVE_INFINITY;
    });

    this.changes = new RedisChangeFeed({
      channel: `${this.#prefix}changes`,
      publisher: this.#redis,
      subscriberOptions: () => this.#subscriberTarget(topology, connectionOptions),
      onError: (err) => this.#onConnectionError(err),
    });
  }

  /**
   * Where the change-feed subscriber connects. Standalone and Sentinel: the same server (Sentinel
   * resolves the current master on every reconnection). Cluster: any node, rotating on each
   * reconnection, because a PUBLISH on a Cluster reaches the subscribers of every node.
   */
  #subscriberTarget(topology: RedisTopology, options: RedisOptions): { url?: string; options: RedisOptions } {
    const base: RedisOptions = { ...options, enableOfflineQueue: true, maxRetriesPerRequest: null };
    if (topology.kind === 'standalone') return { url: topology.url, options: base };
    if (topology.kind === 'sentinel') return { options: base };
    const known = (this.#redis as Cluster).nodes?.('all') ?? [];
    const candidates =
      known.length > 0 ? known.map((n) => ({ host: n.options.host, port: n.options.port })) : topology.nodes;
    const node = candidates[Math.floor(Math.random() * candidates.length)] as RedisEndpoint;
    return { options: { ...base, host: node.host, port: node.port, retryStrategy: () => null } };
  }

  /**
   * The store's command connection (standalone/Sentinel: a Redis, Cluster: a Cluster), for
   * libraries that take an ioredis client, e.g. `@fastify/rate-limit`'s Redis store: one set of
   * TLS/ACL/topology settings and one connection pool. Callers must namespace their keys (the store's
   * own keys all start with the key prefix) and must not close it; `close()` does.
   */
  get client(): Redis | Cluster {
    return this.#redis;
  }

  /** The prefix of every key of this store: other users of `client` put theirs under it too. */
  get keyPrefix(): string {
    return this.#prefix;
  }

  /** Replica acknowledgements that fell short (WAIT timed out) since start; for metrics and tests. */
  get durableShortfalls(): number {
    return this.#durableShortfalls;
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

  /**
   * `set` that waits for `durableReplicas` replicas (`WAIT`, sent in the same pipeline so a Cluster
   * runs it on the key's own master). Redis replication is asynchronous: without this, a login
   * acknowledged by the master and lost in a failover a moment later would be a session that
   * vanishes. A WAIT that times out (replica down) keeps the write: a login is not refused because
   * a replica is missing; the shortfall is logged.
   */
  async setDurable(key: string, value: string, ttlMs: number): Promise<void> {
    if (this.#durableReplicas <= 0) return this.set(key, value, ttlMs);
    const px = checkTtl(ttlMs);
    const replies = await this.#run(() =>
      this.#redis
        .pipeline()
        .set(this.#valueKey(key), value, 'PX', px)
        .wait(this.#durableReplicas, this.#durableTimeoutMs)
        .exec(),
    );
    const [setReply, waitReply] = replies ?? [];
    if (setReply?.[0]) throw new BffError('BFF_STORE_UNAVAILABLE', { cause: setReply[0] });
    this.#checkWait(waitReply);
  }

  /** compareAndSet that waits for replicas like setDurable (rotated refresh tokens must survive a failover). */
  async compareAndSetDurable(key: string, expected: string, next: string, ttlMs: number): Promise<boolean> {
    if (this.#durableReplicas <= 0) return this.compareAndSet(key, expected, next, ttlMs);
    const px = checkTtl(ttlMs);
    const replies = await this.#run(() => {
      // Commands defined with defineCommand exist on pipelines too; ioredis does not type them there.
      const pipeline = this.#redis.pipeline() as ReturnType<Client['pipeline']> & {
        bffCas(key: string, expected: string, next: string, ttlMs: number): ReturnType<Client['pipeline']>;
      };
      return pipeline
        .bffCas(this.#valueKey(key), expected, next, px)
        .wait(this.#durableReplicas, this.#durableTimeoutMs)
        .exec();
    });
    const [casReply, waitReply] = replies ?? [];
    if (casReply?.[0]) throw new BffError('BFF_STORE_UNAVAILABLE', { cause: casReply[0] });
    if (casReply?.[1] !== 1) return false;
    this.#checkWait(waitReply);
    return true;
  }

  #checkWait(reply: [Error | null, unknown] | undefined): void {
    const acked = typeof reply?.[1] === 'number' ? reply[1] : 0;
    if (acked >= this.#durableReplicas) return;
    this.#durableShortfalls++;
    this.#logger?.warn(
      { wanted: this.#durableReplicas, acknowledged: acked, timeoutMs: this.#durableTimeoutMs },
      'redis store: replicas did not acknowledge a session write in time; a failover now could lose it',
    );
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
    this.changes.close();
    const redis = this.#redis;
    if (redis.status === 'ready') {
      try {
        // QUIT lets pending replies arrive; it is bounded by commandTimeout.
        await redis.quit();
      } catch {
        // Fall through to a hard disconnect.
      }
    }
    // Also after QUIT: in Sentinel mode only disconnect() ends the failover detector's connections
    // to the sentinels, which would otherwise keep reconnecting (and the process alive).
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

  /**
   * ioredis ends a client for good when a connection attempt is abandoned: in Sentinel mode, a
   * failover detected (`+switch-master`) while the client is asking the sentinels for the master
   * aborts that attempt, and the client then stays closed with no retry: every command would fail
   * until a restart (seen in the failover test). Unless we closed the store, start connecting
   * again; a failed attempt ends the same way and is retried after the same pause.
   */
  #onEnd(): void {
    if (this.#closed) return;
    this.#logger?.warn({ status: 'end' }, 'redis store: the client closed for good; connecting again');
    const timer = setTimeout(() => {
      if (!this.#closed && this.#redis.status === 'end') this.#redis.connect().catch(() => {});
    }, RECONNECT_AFTER_END_MS);
    timer.unref();
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
  store.changes.start();
  return store;
}
