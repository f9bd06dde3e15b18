/**
 * Key sets (seed 002 §5): schedule next → active → retiring, reload validated before it replaces
 * the set, every published decryption key decrypting, FIPS policy on reload.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CompactEncrypt, compactDecrypt, exportJWK, generateKeyPair, importJWK } from 'jose';
import { KeyRing } from '../../src/keys/key-ring.js';
import { schedule } from '../../src/keys/schedule.js';

async function sigKey(kid: string, iat: number, alg: 'ES256' | 'EdDSA' = 'ES256') {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, use: 'sig', alg, iat };
}
async function encKey(kid: string, iat: number) {
  const { privateKey, publicKey } = await generateKeyPair('RSA-OAEP-256', {
    extractable: true,
    modulusLength: 2048,
  });
  return {
    priv: { ...(await exportJWK(privateKey)), kid, use: 'enc', alg: 'RSA-OAEP-256', iat },
    pub: { ...(await exportJWK(publicKey)), kid, alg: 'RSA-OAEP-256' },
  };
}

describe('key ring', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fapi-bff-ring-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('schedules by creation and publication: oldest signs until a newer one is published long enough', () => {
    const keys = [
      { kid: 'a', createdAt: 100, publishedAt: 0 },
      { kid: 'b', createdAt: 200, publishedAt: 5_000 },
      { kid: 'c', createdAt: 300, publishedAt: 9_000 },
    ];
    assert.deepEqual(Object.fromEntries(schedule(keys, 5_000, 10)), { a: 'active', b: 'next', c: 'next' });
    assert.deepEqual(Object.fromEntries(schedule(keys, 15_000, 10)), {
      a: 'retiring',
      b: 'active',
      c: 'next',
    });
    assert.deepEqual(Object.fromEntries(schedule(keys, 19_000, 10)), {
      a: 'retiring',
      b: 'retiring',
      c: 'active',
    });
    // Right after a start nothing is eligible yet: the oldest key signs.
    assert.deepEqual(
      Object.fromEntries(
        schedule(
          keys.map((k) => ({ ...k, publishedAt: 0 })),
          1,
          10,
        ),
      ),
      { a: 'active', b: 'next', c: 'next' },
    );
  });

  it('re-reads a directory: a new key is next, then active; a broken set changes nothing', async () => {
    const sig = join(dir, 'sig');
    const enc = join(dir, 'enc');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sig);
    mkdirSync(enc);
    writeFileSync(join(sig, 'a.json'), JSON.stringify(await sigKey('a', 100)));
    const encA = await encKey('ea', 100);
    writeFileSync(join(enc, 'ea.json'), JSON.stringify(encA.priv));
    let now = 1_000_000;
    const ring = await KeyRing.open({
      signing: { path: sig, alg: 'ES256' },
      decryption: { path: enc, alg: 'RSA-OAEP-256' },
      prepublishSec: 60,
      fipsMode: true,
      clock: () => now,
    });
    assert.equal(ring.signingKey()?.kid, 'a');

    writeFileSync(join(sig, 'b.json'), JSON.stringify(await sigKey('b', 200)));
    const encB = await encKey('eb', 200);
    writeFileSync(join(enc, 'eb.json'), JSON.stringify(encB.priv));
    assert.equal(await ring.reload(), undefined);
    assert.deepEqual(
      ring.publicJwks().map((k) => k.kid),
      ['a', 'b', 'ea', 'eb'],
    );
    assert.ok(ring.publicJwks().every((k) => k.d === undefined));
    assert.equal(ring.signingKey()?.kid, 'a', 'b is only published');
    now += 61_000;
    assert.equal(ring.signingKey()?.kid, 'b', 'b signs after the pre-publish window');
    assert.deepEqual(
      ring.publicJwks().map((k) => k.kid),
      ['b', 'a', 'eb', 'ea'],
      'active first',
    );

    // The retiring decryption key still decrypts a JWE addressed to it.
    const jwe = await new CompactEncrypt(new TextEncoder().encode('x'))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: 'ea' })
      .encrypt(await importJWK(encA.pub, 'RSA-OAEP-256'));
    const key = ring.decryptionKey('ea');
    assert.ok(key, 'retiring key kept for decryption');
    assert.equal(new TextDecoder().decode((await compactDecrypt(jwe, key)).plaintext), 'x');
    assert.equal(ring.list().find((k) => k.kid === 'ea')?.state, 'retiring');

    // A broken file, an EdDSA key in FIPS mode, a duplicate kid: refused, the set is unchanged.
    writeFileSync(join(sig, 'c.json'), '{not json');
    assert.match((await ring.reload()) ?? '', /not replaced/);
    writeFileSync(join(sig, 'c.json'), JSON.stringify(await sigKey('c', 300, 'EdDSA')));
    assert.match((await ring.reload()) ?? '', /not FIPS-approved/);
    writeFileSync(join(sig, 'c.json'), JSON.stringify(await sigKey('b', 300)));
    assert.match((await ring.reload()) ?? '', /appears twice/);
    assert.equal(ring.signingKey()?.kid, 'b');
    assert.deepEqual(
      ring.list().map((k) => k.kid),
      ['a', 'b', 'ea', 'eb'],
    );
  });
});
