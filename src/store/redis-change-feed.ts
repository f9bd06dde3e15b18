import { randomBytes } from 'node:crypto';
import { type Cluster, Redis, type RedisOptions } from 'ioredis';
import type { ChangeFeed } from './store.js';

export interface RedisChangeFeedOptions {
  /** Pub/sub channel (carries store keys only: hashes, never a token or a cookie value). */
  channel: string;
  /** The store's command connection: PUBLISH goes through it (on a Cluster, to any node). */
  publisher: Redis | Cluster;
  /** Where to connect the subscriber; called again for every new subscriber connection. */
  subscriberOptions: () => { url?: string; options: RedisOptions };
  onError: (err: unknown) => void;
  /** How often this process publishes its own heartbeat on the channel. */
  heartbeatMs?: number;
  /** Not live when our own heartbeat has not come back for this long. */
  staleAfterMs?: number;
}

const HEARTBEAT_PREFIX = 'hb:';
const CHANGE_PREFIX = 'k:';

/**
 * Cross-instance cache invalidation over Redis pub/sub (an explicit channel rather than RESP3
 * client-side caching: see docs/decisions/session-cache.md).
 *
 * Pub/sub delivers at most once and only to connected subscribers, so "live" must be earned and is
 * lost eagerly:
 * - live only after SUBSCRIBE is confirmed on the current connection (not merely connected);
 * - any close, error or end of the subscriber connection ends liveness at once and resets caches;
 * - this process publishes a heartbeat through its command connection every `heartbeatMs` and must
 *   receive it back through its subscriber within `staleAfterMs`: that proves the whole path
 *   (publisher → Redis → cluster bus → subscriber) is delivering, and catches a silently dead socket
 *   or a node cut off from the cluster bus.
 */
export class RedisChangeFeed implements ChangeFeed {
  #live = false;
  #epoch = 0;
  #started = false;
  #closed = false;
  #subscriber: Redis | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #reconnect: NodeJS.Timeout | undefined;
  #lastHeartbeatSeen = 0;
  readonly #instance = randomBytes(8).toString('base64url');
  readonly #changeListeners: ((key: string) => void)[] = [];
  readonly #resetListeners: (() => void)[] = [];
  readonly #heartbeatMs: number;
  readonly #staleAfterMs: number;

  constructor(private readonly options: RedisChangeFeedOptions) {
    this.#heartbeatMs = options.heartbeatMs ?? 250;
    this.#staleAfterMs = options.staleAfterMs ?? 1000;
  }

  get live(): boolean {
    return this.#live;
  }

  get epoch(): number {
    return this.#epoch;
  }

  onChange(listener: (key: string) => void): void {
    this.#changeListeners.push(listener);
  }

  onReset(listener: () => void): void {
    this.#resetListeners.push(listener);
  }

  async publish(key: string): Promise<void> {
    try {
      await this.options.publisher.publish(this.options.channel, `${CHANGE_PREFIX}${key}`);
    } catch (err) {
      // Undelivered: other instances lose liveness too (their heartbeats stop arriving through the
      // same failure) or still read the store; the writer already changed the store itself.
      this.options.onError(err);
    }
  }

  /** Connect the subscriber and start heartbeats (idempotent). */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#connect();
    this.#heartbeat = setInterval(() => this.#tick(), this.#heartbeatMs);
    this.#heartbeat.unref();
  }

  close(): void {
    this.#closed = true;
    this.#lose();
    clearInterval(this.#heartbeat);
    clearTimeout(this.#reconnect);
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
  }

  #connect(): void {
    if (this.#closed) return;
    const { url, options } = this.options.subscriberOptions();
    const subscriber =
      url !== undefined
        ? new Redis(url, { ...options, lazyConnect: true, autoResubscribe: false })
        : new Redis({ ...options, lazyConnect: true, autoResubscribe: false });
    this.#subscriber = subscriber;
    subscriber.on('error', (err: unknown) => {
      this.#lose();
      this.options.onError(err);
    });
    subscriber.on('close', () => this.#lose());
    subscriber.on('end', () => {
      this.#lose();
      // retryStrategy gave up (Cluster subscribers rotate nodes): start over with a new target.
      if (this.#subscriber === subscriber && !this.#closed) {
        this.#reconnect = setTimeout(() => this.#connect(), 100);
        this.#reconnect.unref();
      }
    });
    subscriber.on('ready', () => {
      subscriber.subscribe(this.options.channel).then(
        () => {
          if (this.#subscriber !== subscriber || subscriber.status !== 'ready') return;
          this.#lastHeartbeatSeen = Date.now();
          this.#live = true;
        },
        (err: unknown) => {
          this.options.onError(err);
          subscriber.disconnect(true);
        },
      );
    });
    subscriber.on('message', (_channel: string, message: string) => this.#onMessage(message));
    subscriber.connect().catch(() => {});
  }

  #onMessage(message: string): void {
    if (message.startsWith(HEARTBEAT_PREFIX)) {
      if (message === `${HEARTBEAT_PREFIX}${this.#instance}`) this.#lastHeartbeatSeen = Date.now();
      return;
    }
    if (!message.startsWith(CHANGE_PREFIX)) return;
    const key = message.slice(CHANGE_PREFIX.length);
    for (const listener of this.#changeListeners) listener(key);
  }

  #tick(): void {
    if (this.#live && Date.now() - this.#lastHeartbeatSeen > this.#staleAfterMs) {
      this.#lose();
      // A subscriber that no longer hears anything is replaced, not trusted to recover by itself.
      this.#subscriber?.disconnect(true);
    }
    this.options.publisher
      .publish(this.options.channel, `${HEARTBEAT_PREFIX}${this.#instance}`)
      .catch((err: unknown) => this.options.onError(err));
  }

  #lose(): void {
    if (!this.#live) return;
    this.#live = false;
    this.#epoch++;
    for (const listener of this.#resetListeners) listener();
  }
}
