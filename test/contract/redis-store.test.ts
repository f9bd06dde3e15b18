import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { isBffError } from '../../src/errors.js';
import { createRedisStore, RedisStore, type RedisStoreLogger } from '../../src/store/redis-store.js';
import { freePort } from '../helpers/ports.js';
import { REDIS_SERVER_MISSING, startRedisServer } from '../helpers/redis-servers.js';
import { storeContract } from './store.contract.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Every key this run writes starts with this, so cleanup removes exactly what the run created. */
const RUN_PREFIX = `bff-test:${randomBytes(6).toString('hex')}:`;

let admin: Redis | undefined;
function adminClient(): Redis {
  admin ??= new Redis(REDIS_URL, { maxRetriesPerRequest: 1, commandTimeout: 2000 });
  return admin;
}

async function deleteRunKeys(): Promise<void> {
  const client = adminClient();
  let cursor = '0';
  for (let round = 0; round < 1000; round++) {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${RUN_PREFIX}*`, 'COUNT', 1000);
    if (keys.length > 0) await client.del(...keys);
    cursor = next;
    if (cursor === '0') return;
  }
}

after(async () => {
  if (admin === undefined) return;
  await deleteRunKeys();
  await admin.quit();
});

const isUnavailable = (err: unknown) => isBffError(err) && err.code === 'BFF_STORE_UNAVAILABLE';

storeContract('RedisStore', async () => {
  const store = await createRedisStore({ url: REDIS_URL, keyPrefix: RUN_PREFIX });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await deleteRunKeys();
    },
  };
});

describe('RedisStore against the shared Redis', () => {
  it('prefixes every key so deployments sharing a Redis do not see each other', async () => {
    const one = await createRedisStore({ url: REDIS_URL, keyPrefix: `${RUN_PREFIX}one:` });
    const two = await createRedisStore({ url: REDIS_URL, keyPrefix: `${RUN_PREFIX}two:` });
    try {
      await one.set('shared', 'from one', 60_000);
      await two.set('shared', 'from two', 60_000);
      await one.addToIndex('idx', 'm1', 60_000);
      assert.equal(await one.get('shared'), 'from one');
      assert.equal(await two.get('shared'), 'from two');
      assert.deepEqual(await two.indexMembers('idx'), []);
      assert.equal(await adminClient().get(`${RUN_PREFIX}one:v:shared`), 'from one');
      assert.deepEqual(await adminClient().smembers(`${RUN_PREFIX}one:i:idx`), ['m1']);
      const pttl = await adminClient().pttl(`${RUN_PREFIX}one:i:idx`);
      assert.ok(pttl > 0 && pttl <= 60_000, `index has a ttl (${pttl})`);
    } finally {
      await one.close();
      await two.close();
      await deleteRunKeys();
    }
  });

  it('connects again when the client is closed for good while the store is open (ioredis ends it when a Sentinel failover aborts a connection attempt)', async () => {
    const store = await createRedisStore({ url: REDIS_URL, keyPrefix: `${RUN_PREFIX}end:` });
    try {
      await store.set('k', 'before', 60_000);
      // What ioredis does after an aborted attempt: no more reconnections ('end').
      const ended = new Promise((resolve) => store.client.once('end', resolve));
      store.client.disconnect();
      await ended;
      let value: string | undefined;
      for (let i = 0; i < 100 && value === undefined; i++) {
        value = await store.get('k').catch(() => undefined);
        if (value === undefined) await sleep(50);
      }
      assert.equal(value, 'before', 'the store answers again');
      assert.equal(store.client.status, 'ready');
    } finally {
      await store.close();
      await deleteRunKeys();
    }
    // After close() it stays closed.
    await sleep(400);
    assert.equal(store.client.status, 'end');
  });

  it('treats rediss:// (any case) as TLS: a TLS handshake with a plain-text Redis never becomes ready', async () => {
    const plain = new URL(REDIS_URL);
    for (const scheme of ['rediss', 'REDISS']) {
      const store = new RedisStore({
        url: `${scheme}://${plain.host}`,
        keyPrefix: RUN_PREFIX,
        connectTimeoutMs: 300,
      });
      try {
        const started = Date.now();
        assert.equal(await store.connect(), false, `${scheme}:// must not talk plain text`);
        assert.ok(Date.now() - started < 2000);
        await assert.rejects(store.ping(), isUnavailable);
      } finally {
        await store.close();
      }
    }
  });

  it('rejects a URL that is not redis:// or rediss://', () => {
    assert.throws(() => new RedisStore({ url: 'http://127.0.0.1:6379' }), TypeError);
    assert.throws(() => new RedisStore({ url: '127.0.0.1:6379' }), TypeError);
  });
});

// --- A throwaway redis-server this file may kill, pause and restart -------------------------------

function recordingLogger() {
  const lines: { level: 'warn' | 'info'; obj: object; msg: string }[] = [];
  const logger: RedisStoreLogger = {
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
  };
  return { lines, logger };
}

async function eventually(check: () => Promise<void>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

/**
 * Every operation of the interface, each expected to fail with BFF_STORE_UNAVAILABLE. With the
 * offline queue disabled a command fails as soon as it is issued, so the whole sequence fits in
 * `boundMs`; a queueing client would wait for the next failed reconnection per command.
 */
async function assertAllUnavailable(store: RedisStore, boundMs: number): Promise<void> {
  const sequenceStarted = Date.now();
  const operations: [string, () => Promise<unknown>][] = [
    ['get', () => store.get('k')],
    ['set', () => store.set('k', 'v', 1000)],
    ['setIfAbsent', () => store.setIfAbsent('k', 'v', 1000)],
    ['compareAndSet', () => store.compareAndSet('k', 'v', 'w', 1000)],
    ['take', () => store.take('k')],
    ['delete', () => store.delete('k')],
    ['touch', () => store.touch('k', 1000)],
    ['addToIndex', () => store.addToIndex('i', 'm', 1000)],
    ['indexMembers', () => store.indexMembers('i')],
    ['removeFromIndex', () => store.removeFromIndex('i', 'm')],
    ['ping', () => store.ping()],
  ];
  for (const [name, operation] of operations) {
    const started = Date.now();
    await assert.rejects(operation(), isUnavailable, `${name} rejects with BFF_STORE_UNAVAILABLE`);
    const elapsed = Date.now() - started;
    assert.ok(elapsed < boundMs, `${name} failed after ${elapsed} ms (bound ${boundMs} ms)`);
  }
  const total = Date.now() - sequenceStarted;
  assert.ok(total < boundMs, `all operations failed within ${total} ms (bound ${boundMs} ms)`);
}

async function assertWorks(store: RedisStore, label: string): Promise<void> {
  await store.ping();
  await store.set('k', label, 60_000);
  assert.equal(await store.get('k'), label);
  // Scripts were flushed if Redis restarted: EVALSHA must fall back to loading them again.
  assert.equal(await store.compareAndSet('k', label, `${label}!`, 60_000), true);
  await store.addToIndex('i', label, 60_000);
  assert.ok((await store.indexMembers('i')).includes(label));
  assert.equal(await store.take('k'), `${label}!`);
}

describe(
  'RedisStore when Redis fails',
  {
    skip: REDIS_SERVER_MISSING,
  },
  () => {
    it('starts without Redis, fails fast while it is down, and recovers each time it returns', async () => {
      const port = await freePort();
      const { lines, logger } = recordingLogger();
      const connectTimeoutMs = 400;
      const startedAt = Date.now();
      const store = await createRedisStore({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs, logger });
      try {
        const startup = Date.now() - startedAt;
        assert.ok(startup < connectTimeoutMs + 1000, `factory resolved after ${startup} ms`);
        assert.ok(
          lines.some((l) => l.level === 'warn' && /not ready at startup/.test(l.msg)),
          'startup without Redis is logged',
        );
        await assertAllUnavailable(store, 1000);

        const server = await startRedisServer({ port });
        await eventually(() => store.ping(), 5000);
        await assertWorks(store, 'first');

        await server.kill();
        const warnsBefore = lines.filter((l) => l.level === 'warn').length;
        await assertAllUnavailable(store, 1000);
        await sleep(800); // several reconnection attempts fail meanwhile (100, 200, 300… ms apart)
        const warnsWhileDown = lines.filter((l) => l.level === 'warn').length - warnsBefore;
        assert.ok(warnsWhileDown <= 2, `connection errors are rate-limited (${warnsWhileDown} warnings)`);

        await server.restart();
        await eventually(() => store.ping(), 5000);
        await assertWorks(store, 'second');
        assert.ok(
          lines.some((l) => l.level === 'info' && /ready/.test(l.msg)),
          'recovery is logged',
        );
        await server.close();
      } finally {
        await store.close();
      }
    });

    it('times out commands against a Redis that accepts but does not answer, then recovers', async () => {
      const port = await freePort();
      const server = await startRedisServer({ port });
      const { logger } = recordingLogger();
      const commandTimeoutMs = 300;
      const store = await createRedisStore({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs, logger });
      try {
        await assertWorks(store, 'before');
        server.pause();
        for (let i = 0; i < 3; i++) {
          const started = Date.now();
          await assert.rejects(store.get('k'), isUnavailable);
          const elapsed = Date.now() - started;
          assert.ok(elapsed < commandTimeoutMs + 700, `get failed after ${elapsed} ms`);
        }
        server.resume();
        await eventually(() => assertWorks(store, 'after'), 5000);
      } finally {
        server.resume();
        await store.close();
        await server.close();
      }
    });

    it('closes promptly while Redis is down', async () => {
      const port = await freePort();
      const store = await createRedisStore({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 200 });
      const started = Date.now();
      await store.close();
      assert.ok(Date.now() - started < 500, 'close does not wait for a Redis that is not there');
      await assert.rejects(store.ping(), isUnavailable);
    });
  },
);
