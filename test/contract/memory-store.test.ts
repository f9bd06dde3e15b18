import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryStore } from '../../src/store/memory-store.js';
import { storeContract } from './store.contract.js';

function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  return {
    clock: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

storeContract('MemoryStore', async () => {
  const { clock, advance } = fakeClock();
  const store = new MemoryStore({ clock });
  return { store, advance, cleanup: () => store.close() };
});

describe('MemoryStore bound and eviction', () => {
  it('evicts the entry that expires soonest when full', async () => {
    const { clock } = fakeClock();
    const store = new MemoryStore({ maxEntries: 3, clock, sweepIntervalMs: 0 });
    await store.set('a', 'A', 3000);
    await store.set('b', 'B', 1000);
    await store.set('c', 'C', 2000);
    await store.set('d', 'D', 5000);
    assert.equal(store.size, 3);
    assert.equal(await store.get('b'), undefined, 'b expired soonest');
    assert.deepEqual([await store.get('a'), await store.get('c'), await store.get('d')], ['A', 'C', 'D']);
    await store.close();
  });

  it('orders eviction by the current expiry after touch, compareAndSet and overwrite', async () => {
    const { clock } = fakeClock();
    const store = new MemoryStore({ maxEntries: 3, clock, sweepIntervalMs: 0 });
    await store.set('a', 'A', 1000);
    await store.set('b', 'B', 2000);
    await store.set('c', 'C', 3000);
    await store.touch('a', 10_000); // a no longer expires first
    await store.set('d', 'D', 20_000);
    assert.equal(await store.get('b'), undefined, 'b expires soonest once a was touched');
    assert.equal(await store.get('a'), 'A');
    await store.compareAndSet('c', 'C', 'C2', 30_000); // c now outlives a
    await store.set('e', 'E', 20_000);
    assert.equal(await store.get('a'), undefined);
    assert.equal(await store.get('c'), 'C2');
    await store.close();
  });

  it('reclaims expired entries before evicting live ones', async () => {
    const { clock, advance } = fakeClock();
    const store = new MemoryStore({ maxEntries: 3, clock, sweepIntervalMs: 0 });
    await store.set('live1', '1', 10_000);
    await store.set('dead', 'x', 100);
    await store.set('live2', '2', 5_000);
    advance(200);
    await store.set('new', 'n', 1_000); // expires sooner than every live entry
    assert.deepEqual(
      [await store.get('live1'), await store.get('live2'), await store.get('new')],
      ['1', '2', 'n'],
    );
    await store.close();
  });

  it('does not evict when an existing key is overwritten at the bound', async () => {
    const { clock } = fakeClock();
    const store = new MemoryStore({ maxEntries: 2, clock, sweepIntervalMs: 0 });
    await store.set('a', 'A', 1000);
    await store.set('b', 'B', 2000);
    await store.set('a', 'A2', 1000);
    assert.equal(await store.setIfAbsent('b', 'B2', 1000), false);
    assert.deepEqual([await store.get('a'), await store.get('b')], ['A2', 'B']);
    await store.close();
  });

  it('counts indexes towards the bound and evicts them like values', async () => {
    const { clock } = fakeClock();
    const store = new MemoryStore({ maxEntries: 2, clock, sweepIntervalMs: 0 });
    await store.addToIndex('idx', 'm', 1000);
    await store.set('a', 'A', 5000);
    await store.set('b', 'B', 5000);
    assert.equal(store.size, 2);
    assert.deepEqual(await store.indexMembers('idx'), []);
    await store.addToIndex('idx2', 'm', 10_000); // evicts a or b, both expire before it
    assert.equal(store.size, 2);
    assert.deepEqual(await store.indexMembers('idx2'), ['m']);
    await store.close();
  });

  it('stays within the bound and consistent under a long random workload', async () => {
    const { clock, advance } = fakeClock();
    const max = 10;
    const store = new MemoryStore({ maxEntries: max, clock, sweepIntervalMs: 0 });
    // Deterministic PRNG (mulberry32) so a failure reproduces.
    let seed = 0x5eed;
    const rand = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = (n: number) => Math.floor(rand() * n);
    const lastWritten = new Map<string, string>();
    for (let i = 0; i < 5000; i++) {
      const k = `k${pick(25)}`;
      const ttl = 1 + pick(5000);
      const value = `v${i}`;
      switch (pick(9)) {
        case 0:
        case 1:
          await store.set(k, value, ttl);
          lastWritten.set(k, value);
          break;
        case 2:
          if (await store.setIfAbsent(k, value, ttl)) lastWritten.set(k, value);
          break;
        case 3:
          if (await store.compareAndSet(k, lastWritten.get(k) ?? '', value, ttl)) lastWritten.set(k, value);
          break;
        case 4:
          await store.touch(k, ttl);
          break;
        case 5: {
          const got = await store.take(k);
          if (got !== undefined) assert.equal(got, lastWritten.get(k));
          break;
        }
        case 6:
          await store.addToIndex(`i${pick(5)}`, k, ttl);
          break;
        case 7:
          await store.removeFromIndex(`i${pick(5)}`, k);
          break;
        default:
          advance(pick(300));
      }
      assert.ok(store.size <= max, `size ${store.size} exceeds ${max} at step ${i}`);
      const got = await store.get(k);
      if (got !== undefined) assert.equal(got, lastWritten.get(k), `stale value for ${k} at step ${i}`);
    }
    await store.close();
  });

  it('rejects a bound that is not a positive integer', () => {
    assert.throws(() => new MemoryStore({ maxEntries: 0 }), RangeError);
    assert.throws(() => new MemoryStore({ maxEntries: 1.5 }), RangeError);
    assert.throws(() => new MemoryStore({ sweepIntervalMs: -1 }), RangeError);
  });
});

describe('MemoryStore sweep timer', () => {
  it('reclaims expired entries nobody reads', async () => {
    const { clock, advance } = fakeClock();
    const store = new MemoryStore({ clock, sweepIntervalMs: 5 });
    for (let i = 0; i < 5; i++) await store.set(`k${i}`, 'v', 100);
    await store.addToIndex('idx', 'm', 100);
    await store.set('keep', 'v', 10_000);
    advance(101);
    const deadline = Date.now() + 1000;
    while (store.size > 1 && Date.now() < deadline) await sleep(5);
    assert.equal(store.size, 1);
    assert.equal(await store.get('keep'), 'v');
    await store.close();
  });

  it('does not keep the process alive and stops on close', async () => {
    let clockCalls = 0;
    const clock = () => {
      clockCalls++;
      return Date.now();
    };
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const store = new MemoryStore({ clock, sweepIntervalMs: 5 });
    assert.equal(timers(), before, 'the sweep timer is unref()ed');
    const deadline = Date.now() + 1000;
    while (clockCalls === 0 && Date.now() < deadline) await sleep(5);
    assert.ok(clockCalls > 0, 'the sweep ran');
    await store.close();
    const afterClose = clockCalls;
    await sleep(40);
    assert.equal(clockCalls, afterClose, 'no sweep after close');
  });

  it('starts no timer when the sweep is disabled', async () => {
    let clockCalls = 0;
    const store = new MemoryStore({
      clock: () => {
        clockCalls++;
        return Date.now();
      },
      sweepIntervalMs: 0,
    });
    await sleep(30);
    assert.equal(clockCalls, 0);
    await store.close();
  });
});
