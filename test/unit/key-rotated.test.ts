/**
 * The key ring reports a change of its active key (the `key.rotated` audit event): when a next key's
 * pre-publish window ends, and when a reload removes the active key; never at start, never twice
 * for one change, and with ids only (no key material).
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { KeyRing, type KeyRotation } from '../../src/keys/key-ring.js';

async function sigKey(kid: string, iat: number) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const pub = await exportJWK(publicKey);
  return {
    priv: { ...(await exportJWK(privateKey)), kid, use: 'sig', alg: 'ES256', iat },
    thumbprint: await calculateJwkThumbprint(pub, 'sha256'),
  };
}

describe('key ring rotation events', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fapi-bff-rotated-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reports the new active key when the window ends and when a reload removes the active one', async () => {
    const sig = join(dir, 'sig');
    mkdirSync(sig);
    const a = await sigKey('a', 100);
    writeFileSync(join(sig, 'a.json'), JSON.stringify(a.priv));
    let now = 1_000_000;
    const ring = await KeyRing.open({
      signing: { path: sig, alg: 'ES256' },
      prepublishSec: 60,
      fipsMode: false,
      clock: () => now,
    });
    const seen: KeyRotation[] = [];
    const stop = ring.onRotated((r) => seen.push(r));
    try {
      assert.equal(ring.signingKey()?.kid, 'a');
      assert.deepEqual(seen, [], 'the set at start is not a rotation');

      const b = await sigKey('b', 200);
      writeFileSync(join(sig, 'b.json'), JSON.stringify(b.priv));
      assert.equal(await ring.reload(), undefined);
      assert.deepEqual(seen, [], 'a published key is not active yet');

      now += 61_000;
      assert.equal(ring.signingKey()?.kid, 'b');
      ring.signingKey();
      assert.deepEqual(seen, [{ use: 'sig', kid: 'b', thumbprint: b.thumbprint, previousKid: 'a' }], 'once');

      // The operator removes the active key: the older one that is left signs again.
      unlinkSync(join(sig, 'b.json'));
      assert.equal(await ring.reload(), undefined);
      assert.deepEqual(seen.at(-1), { use: 'sig', kid: 'a', thumbprint: a.thumbprint, previousKid: 'b' });
      assert.equal(seen.length, 2);
      assert.ok(!JSON.stringify(seen).includes(String(a.priv.d)), 'no private key material');
    } finally {
      stop();
      ring.close();
    }
  });

  it('reports a window that ends with no signature asked for (a timer at the schedule’s next change)', async () => {
    const sig = join(dir, 'timer');
    mkdirSync(sig);
    writeFileSync(join(sig, 'a.json'), JSON.stringify((await sigKey('a', 100)).priv));
    writeFileSync(join(sig, 'b.json'), JSON.stringify((await sigKey('b', 200)).priv));
    const ring = await KeyRing.open({
      signing: { path: sig, alg: 'ES256' },
      prepublishSec: 1,
      fipsMode: false,
    });
    const rotated = new Promise<KeyRotation>((resolve) => ring.onRotated(resolve));
    // The ring's timer is unref'd (it must not keep a process alive): this one holds the loop open.
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('no key.rotated within 5 s')), 5_000);
      });
      const r = await Promise.race([rotated, timeout]);
      assert.deepEqual([r.use, r.kid, r.previousKid], ['sig', 'b', 'a']);
    } finally {
      clearTimeout(timer);
      ring.close();
    }
  });
});
