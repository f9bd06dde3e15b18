import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isBffError } from '../../src/errors.js';
import type { KeyValueStore } from '../../src/store/store.js';

export interface StoreUnderTest {
  store: KeyValueStore;
  /** Moves the store's clock forward; absent for stores on real time (then the suite sleeps). */
  advance?: (ms: number) => void;
  cleanup: () => Promise<void>;
}

/**
 * The behaviour every KeyValueStore must have. Run unchanged against each implementation.
 *
 * Time: with `advance` the suite moves the injected clock (TTL unit 1 s); without it, it uses real
 * TTLs in units of 100 ms and sleeps, so each expiry check costs a few hundred milliseconds.
 */
export function storeContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`KeyValueStore contract: ${name}`, () => {
    let ctx: StoreUnderTest;
    let store: KeyValueStore;
    /** One TTL unit. Checks leave a margin of at least half a unit on the side delays can shift. */
    let unit: number;

    const key = (label: string) => `contract:${label}:${randomUUID()}`;
    const pass = async (ms: number) => {
      if (ctx.advance) ctx.advance(ms);
      else await sleep(ms);
    };

    beforeEach(async () => {
      ctx = await makeStore();
      store = ctx.store;
      // Real stores run on real time: a unit long enough that a loaded CI machine's timer delays
      // (tens of milliseconds) cannot turn "alive" into "expired" between two steps.
      unit = ctx.advance ? 1000 : 250;
    });

    afterEach(async () => {
      await ctx.cleanup();
    });

    describe('get / set / delete', () => {
      it('returns undefined for a key never set', async () => {
        assert.equal(await store.get(key('absent')), undefined);
      });

      it('returns what was set and overwrites on a second set', async () => {
        const k = key('set');
        await store.set(k, 'one', 60_000);
        assert.equal(await store.get(k), 'one');
        await store.set(k, 'two', 60_000);
        assert.equal(await store.get(k), 'two');
      });

      it('keeps keys independent', async () => {
        const a = key('a');
        const b = key('b');
        await store.set(a, 'A', 60_000);
        await store.set(b, 'B', 60_000);
        await store.delete(a);
        assert.equal(await store.get(a), undefined);
        assert.equal(await store.get(b), 'B');
      });

      it('deletes, and deleting an absent key is not an error', async () => {
        const k = key('del');
        await store.set(k, 'v', 60_000);
        await store.delete(k);
        assert.equal(await store.get(k), undefined);
        await store.delete(k);
        await store.delete(key('never'));
      });

      it('stores the empty string as a value, distinct from absent', async () => {
        const k = key('empty');
        await store.set(k, '', 60_000);
        assert.equal(await store.get(k), '');
      });

      it('expires a value after its ttl, and a later set starts a new ttl', async () => {
        const k = key('ttl');
        await store.set(k, 'v', 2 * unit);
        await pass(unit);
        assert.equal(await store.get(k), 'v', 'still alive before the ttl');
        await store.set(k, 'w', 3 * unit);
        await pass(1.5 * unit);
        assert.equal(await store.get(k), 'w', 'the second set replaced the first ttl');
        await pass(2 * unit);
        assert.equal(await store.get(k), undefined, 'expired after the new ttl');
      });

      it('round-trips arbitrary unicode in keys and values', async () => {
        const k = key('ünïcødé-🔑-鍵-\u{10FFFF}');
        const value = 'héllo wörld · 日本語 · עברית · 🇳🇱👩🏽‍💻 · e\u0301 · \u0000\t\n\r · "quote" \\ \u2028';
        await store.set(k, value, 60_000);
        assert.equal(await store.get(k), value);
        assert.equal(await store.take(k), value);
      });

      it('round-trips a 64 KiB value', async () => {
        const k = key('big');
        const chunk = 'abc€😀'; // 1 + 1 + 1 + 3 + 4 = 10 UTF-8 bytes
        const value = chunk.repeat(6554) + 'END-OF-VALUE-☃';
        assert.ok(Buffer.byteLength(value, 'utf8') >= 64 * 1024);
        await store.set(k, value, 60_000);
        const got = await store.get(k);
        assert.equal(got?.length, value.length);
        assert.equal(got, value);
      });

      it('rejects a ttl that is not a positive number', async () => {
        const k = key('badttl');
        await assert.rejects(store.set(k, 'v', 0), RangeError);
        await assert.rejects(store.set(k, 'v', -5), RangeError);
        await assert.rejects(store.set(k, 'v', Number.NaN), RangeError);
        assert.equal(await store.get(k), undefined);
      });
    });

    describe('setIfAbsent', () => {
      it('stores when absent and refuses when present, leaving the value untouched', async () => {
        const k = key('nx');
        assert.equal(await store.setIfAbsent(k, 'first', 60_000), true);
        assert.equal(await store.setIfAbsent(k, 'second', 60_000), false);
        assert.equal(await store.get(k), 'first');
      });

      it('treats an expired key as absent and applies the ttl', async () => {
        const k = key('nx-exp');
        assert.equal(await store.setIfAbsent(k, 'old', unit), true);
        await pass(1.5 * unit);
        assert.equal(await store.setIfAbsent(k, 'new', unit), true);
        assert.equal(await store.get(k), 'new');
        await pass(1.5 * unit);
        assert.equal(await store.get(k), undefined);
      });

      it('lets exactly one of 20 concurrent callers win', async () => {
        const k = key('nx-race');
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.setIfAbsent(k, `writer-${i}`, 60_000)),
        );
        const winners = results.flatMap((won, i) => (won ? [i] : []));
        assert.equal(winners.length, 1);
        assert.equal(await store.get(k), `writer-${winners[0]}`);
      });
    });

    describe('compareAndSet', () => {
      it('refuses when the expected value is wrong and leaves the value unchanged', async () => {
        const k = key('cas-wrong');
        await store.set(k, 'current', 60_000);
        assert.equal(await store.compareAndSet(k, 'stale', 'next', 60_000), false);
        assert.equal(await store.get(k), 'current');
      });

      it('refuses on an absent key and does not create it', async () => {
        const k = key('cas-absent');
        assert.equal(await store.compareAndSet(k, 'anything', 'next', 60_000), false);
        assert.equal(await store.compareAndSet(k, '', 'next', 60_000), false);
        assert.equal(await store.get(k), undefined);
      });

      it('replaces when the expected value matches, with the new ttl', async () => {
        const k = key('cas-right');
        await store.set(k, 'current', 60_000);
        assert.equal(await store.compareAndSet(k, 'current', 'next', 2 * unit), true);
        assert.equal(await store.get(k), 'next');
        assert.equal(
          await store.compareAndSet(k, 'current', 'again', 60_000),
          false,
          'old value no longer matches',
        );
        await pass(2.5 * unit);
        assert.equal(await store.get(k), undefined, 'the ttl given to compareAndSet applies');
      });

      it('refuses on an expired key even when the old value matched', async () => {
        const k = key('cas-expired');
        await store.set(k, 'current', unit);
        await pass(1.5 * unit);
        assert.equal(await store.compareAndSet(k, 'current', 'next', 60_000), false);
        assert.equal(await store.get(k), undefined);
      });

      it('lets exactly one of 20 concurrent swaps from the same expected value win', async () => {
        const k = key('cas-race');
        await store.set(k, 'v0', 60_000);
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.compareAndSet(k, 'v0', `v1-${i}`, 60_000)),
        );
        const winners = results.flatMap((won, i) => (won ? [i] : []));
        assert.equal(winners.length, 1);
        assert.equal(await store.get(k), `v1-${winners[0]}`);
      });
    });

    describe('take', () => {
      it('returns the value once and deletes it', async () => {
        const k = key('take');
        await store.set(k, 'once', 60_000);
        assert.equal(await store.take(k), 'once');
        assert.equal(await store.take(k), undefined);
        assert.equal(await store.get(k), undefined);
      });

      it('returns undefined for an absent or expired key', async () => {
        assert.equal(await store.take(key('take-absent')), undefined);
        const k = key('take-exp');
        await store.set(k, 'v', unit);
        await pass(1.5 * unit);
        assert.equal(await store.take(k), undefined);
      });

      it('hands the value to exactly one of 20 concurrent takers', async () => {
        const k = key('take-race');
        await store.set(k, 'single-use', 60_000);
        const results = await Promise.all(Array.from({ length: 20 }, () => store.take(k)));
        assert.deepEqual(
          results.filter((r) => r !== undefined),
          ['single-use'],
        );
        assert.equal(await store.get(k), undefined);
      });
    });

    describe('touch', () => {
      it('returns false for an absent key and does not create it', async () => {
        const k = key('touch-absent');
        assert.equal(await store.touch(k, 60_000), false);
        assert.equal(await store.get(k), undefined);
      });

      it('returns false for an expired key', async () => {
        const k = key('touch-exp');
        await store.set(k, 'v', unit);
        await pass(1.5 * unit);
        assert.equal(await store.touch(k, 60_000), false);
        assert.equal(await store.get(k), undefined);
      });

      it('extends the lifetime of a live key without changing its value', async () => {
        // Every step keeps a whole unit of margin to the expiry it must not cross: on real Redis
        // (unit 250 ms) a loaded machine delays a step by more than half a unit.
        const k = key('touch');
        await store.set(k, 'v', 4 * unit);
        await pass(2 * unit);
        assert.equal(await store.touch(k, 4 * unit), true);
        await pass(3 * unit);
        assert.equal(await store.get(k), 'v', 'alive past the original ttl');
        await pass(2 * unit);
        assert.equal(await store.get(k), undefined, 'expired after the touched ttl');
      });

      it('can shorten the lifetime', async () => {
        const k = key('touch-short');
        await store.set(k, 'v', 60_000);
        assert.equal(await store.touch(k, unit), true);
        await pass(1.5 * unit);
        assert.equal(await store.get(k), undefined);
      });
    });

    describe('indexes', () => {
      it('is empty for an index never written, and removing from it is not an error', async () => {
        const idx = key('idx-absent');
        assert.deepEqual(await store.indexMembers(idx), []);
        await store.removeFromIndex(idx, 'nobody');
        assert.deepEqual(await store.indexMembers(idx), []);
      });

      it('holds a set of members: no duplicates, removal of one keeps the others', async () => {
        const idx = key('idx');
        await store.addToIndex(idx, 'a', 60_000);
        await store.addToIndex(idx, 'b', 60_000);
        await store.addToIndex(idx, 'a', 60_000);
        await store.addToIndex(idx, 'ünï-🔑', 60_000);
        assert.deepEqual((await store.indexMembers(idx)).sort(), ['a', 'b', 'ünï-🔑'].sort());
        await store.removeFromIndex(idx, 'a');
        await store.removeFromIndex(idx, 'not-a-member');
        assert.deepEqual((await store.indexMembers(idx)).sort(), ['b', 'ünï-🔑'].sort());
        await store.removeFromIndex(idx, 'b');
        await store.removeFromIndex(idx, 'ünï-🔑');
        assert.deepEqual(await store.indexMembers(idx), []);
      });

      it('keeps indexes independent of each other and of values with the same name', async () => {
        const a = key('idx-a');
        const b = key('idx-b');
        await store.addToIndex(a, 'x', 60_000);
        await store.addToIndex(b, 'y', 60_000);
        await store.set(a, 'a value', 60_000);
        assert.deepEqual(await store.indexMembers(a), ['x']);
        assert.deepEqual(await store.indexMembers(b), ['y']);
        assert.equal(await store.get(a), 'a value');
        await store.delete(a);
        assert.deepEqual(await store.indexMembers(a), ['x']);
      });

      it('expires the whole index after its ttl', async () => {
        const idx = key('idx-ttl');
        await store.addToIndex(idx, 'a', 2 * unit);
        await store.addToIndex(idx, 'b', 2 * unit);
        await pass(unit);
        assert.deepEqual((await store.indexMembers(idx)).sort(), ['a', 'b']);
        await pass(1.5 * unit);
        assert.deepEqual(await store.indexMembers(idx), []);
      });

      it('resets the index ttl on every add', async () => {
        const idx = key('idx-refresh');
        await store.addToIndex(idx, 'a', 2 * unit);
        await pass(1.5 * unit);
        await store.addToIndex(idx, 'b', 2 * unit);
        await pass(unit);
        assert.deepEqual((await store.indexMembers(idx)).sort(), ['a', 'b'], 'alive past the first ttl');
        await pass(1.5 * unit);
        assert.deepEqual(await store.indexMembers(idx), []);
      });

      it('starts a fresh index after expiry', async () => {
        const idx = key('idx-fresh');
        await store.addToIndex(idx, 'old', unit);
        await pass(1.5 * unit);
        await store.addToIndex(idx, 'new', 60_000);
        assert.deepEqual(await store.indexMembers(idx), ['new']);
      });
    });

    describe('ping / close', () => {
      it('answers ping while open', async () => {
        await store.ping();
      });

      it('closes idempotently; afterwards operations fail with BFF_STORE_UNAVAILABLE', async () => {
        await store.close();
        await store.close();
        const unavailable = (err: unknown) => isBffError(err) && err.code === 'BFF_STORE_UNAVAILABLE';
        await assert.rejects(store.ping(), unavailable);
        await assert.rejects(store.get(key('closed')), unavailable);
      });
    });
  });
}
