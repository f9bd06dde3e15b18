/** The Redis keys a bench run created, found by the run's own key prefix. */
import { Redis } from 'ioredis';
import { REDIS_URL } from '../test/helpers/bff-harness.js';

/** Deletes every key under `prefix` (SCAN, never KEYS: the shared Redis stays responsive); returns how many. */
export async function deleteKeysUnder(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let deleted = 0;
    for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 500 }) as AsyncIterable<
      string[]
    >) {
      if (keys.length) deleted += await redis.del(...keys);
    }
    return deleted;
  } finally {
    redis.disconnect();
  }
}
