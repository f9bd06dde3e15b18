/**
 * Attack: evicting security records from the in-memory store with a flood of another kind of
 * record (security review, finding 1, second half).
 *
 * The memory store had one bound shared by sessions, login transactions, replay caches, refresh
 * locks and nonce caches, evicting the entry that expires soonest. Replay entries live about a
 * minute, so a flood of anything (unauthenticated /auth/login transactions, or proofs) pushed them
 * out, and a proof, JARM response or logout token refused as a replay was accepted again; a flood
 * of replay entries could in turn push out sessions and refresh locks.
 *
 * Fixed when: each kind has its own bound; a flood of one never evicts another; and a full replay
 * cache or lock table refuses new writes (503, fail closed) instead of forgetting live entries.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { isBffError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const MAX = 100;
const clock = () => 1_700_000_000_000;

describe('regression: cross-kind eviction in the memory store', () => {
  it('a flood of login transactions evicts no replay entry, lock or session', async () => {
    const store = new MemoryStore({ maxEntries: MAX, clock, sweepIntervalMs: 0 });
    assert.equal(await store.setIfAbsent('dpopjti:genuine', '1', 66_000), true);
    assert.equal(await store.setIfAbsent('jarm:genuine', '1', 66_000), true);
    assert.equal(await store.setIfAbsent('refresh-lock:s:abc', 'fence', 30_000), true);
    await store.set('s:session', 'sealed', 3_600_000);
    for (let i = 0; i < 10 * MAX; i++) await store.set(`t:${i}`, 'tx', 600_000);
    assert.equal(await store.setIfAbsent('dpopjti:genuine', '1', 66_000), false, 'replay still refused');
    assert.equal(await store.setIfAbsent('jarm:genuine', '1', 66_000), false, 'JARM replay still refused');
    assert.equal(await store.get('refresh-lock:s:abc'), 'fence', 'the lock is still held');
    assert.equal(await store.get('s:session'), 'sealed', 'the session survives');
    await store.close();
  });

  it('a flood of replay entries evicts no session and, once full, refuses instead of forgetting', async () => {
    const store = new MemoryStore({ maxEntries: MAX, clock, sweepIntervalMs: 0 });
    await store.set('s:session', 'sealed', 1_000); // expires sooner than any replay entry
    assert.equal(await store.setIfAbsent('dpopjti:genuine', '1', 66_000), true);
    let refused = 0;
    for (let i = 0; i < 2 * MAX; i++) {
      try {
        await store.setIfAbsent(`dpopjti:junk${i}`, '1', 66_000);
      } catch (err) {
        assert.ok(isBffError(err) && err.code === 'BFF_STORE_UNAVAILABLE', String(err));
        refused++;
      }
    }
    assert.equal(refused, MAX + 1, 'writes beyond the bound are refused');
    assert.equal(await store.setIfAbsent('dpopjti:genuine', '1', 66_000), false, 'replay still refused');
    assert.equal(await store.get('s:session'), 'sealed', 'the session survives');
    await store.close();
  });

  it('sessions still evict the soonest-expiring session at their own bound', async () => {
    const store = new MemoryStore({ maxEntries: 2, clock, sweepIntervalMs: 0 });
    await store.setIfAbsent('dpopjti:genuine', '1', 10);
    await store.set('s:a', 'A', 1_000);
    await store.set('s:b', 'B', 2_000);
    await store.set('s:c', 'C', 3_000);
    assert.deepEqual(
      [await store.get('s:a'), await store.get('s:b'), await store.get('s:c')],
      [undefined, 'B', 'C'],
    );
    assert.equal(await store.setIfAbsent('dpopjti:genuine', '1', 10), false);
    await store.close();
  });
});
