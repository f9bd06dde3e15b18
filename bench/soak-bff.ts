/**
 * The BFF under soak (`soak.ts` forks it with `--expose-gc`), in its own process so its memory is
 * measured alone: the real app on the Redis store, started through the same harness as the e2e tests
 * and the benchmark. IPC: `{ type: 'memory', gc? }` answers the process's RSS and V8 heap (after a
 * full GC when asked), `{ type: 'metrics' }` the Prometheus text of its registry.
 */
import { createRedisStore } from '../src/store/redis-store.js';
import { type ClientKey, REDIS_URL, startBff } from '../test/helpers/bff-harness.js';

export interface SoakBffOptions {
  port: number;
  issuer: string;
  clientId: string;
  key: ClientKey;
  upstreamUrl: string;
  keyPrefix: string;
  env: Record<string, string>;
}

export type SoakBffRequest = { type: 'memory'; id: number; gc?: boolean } | { type: 'metrics'; id: number };

export type SoakBffMessage =
  | { type: 'ready'; url: string; cookieName: string }
  | { type: 'memory'; id: number; rss: number; heapUsed: number; heapTotal: number; external: number }
  | { type: 'metrics'; id: number; text: string };

const options = JSON.parse(process.argv[2] ?? '{}') as SoakBffOptions;
const store = await createRedisStore({
  url: REDIS_URL,
  keyPrefix: options.keyPrefix,
  connectTimeoutMs: 3000,
});
const bff = await startBff({
  port: options.port,
  issuer: options.issuer,
  clientId: options.clientId,
  key: options.key,
  store,
  routes: { soak: options.upstreamUrl },
  env: options.env,
});

const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', (m: SoakBffRequest) => {
  if (m.type === 'memory') {
    if (m.gc && gc) {
      // Twice: the first full GC can leave garbage that finalizers of the first release.
      gc();
      gc();
    }
    const mem = process.memoryUsage();
    const reply: SoakBffMessage = {
      type: 'memory',
      id: m.id,
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      heapTotal: mem.heapTotal,
      external: mem.external,
    };
    process.send?.(reply);
  } else if (m.type === 'metrics') {
    void bff.metrics.registry.metrics().then((text) => {
      const reply: SoakBffMessage = { type: 'metrics', id: m.id, text };
      process.send?.(reply);
    });
  }
});
process.on('disconnect', () => {
  void bff
    .close()
    .then(() => store.close())
    .finally(() => process.exit(0));
});
const ready: SoakBffMessage = { type: 'ready', url: bff.url, cookieName: bff.config.session.cookieName };
process.send?.(ready);
