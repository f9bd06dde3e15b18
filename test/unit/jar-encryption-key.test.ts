/** The IdP's request-object encryption key chosen from its JWKS (RFC 9101 §6.1), JwksCache.encryptionKey. */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { CompactEncrypt, compactDecrypt, exportJWK, generateKeyPair, type JWK } from 'jose';
import { BffError } from '../../src/errors.js';
import type { IdpFetch } from '../../src/oauth/http.js';
import { JwksCache } from '../../src/oauth/jwks-cache.js';

async function pair(alg: string, opts: Record<string, unknown> = {}) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...opts });
  return { privateKey, jwk: await exportJWK(publicKey) };
}

function cacheOf(keys: JWK[]): { cache: JwksCache; hits: () => number } {
  let hits = 0;
  const fetch = (async () => {
    hits++;
    return new Response(JSON.stringify({ keys }), { status: 200 });
  }) as unknown as IdpFetch;
  return { cache: new JwksCache({ jwksUri: 'https://idp.example/jwks', fetch }), hits: () => hits };
}

describe('JwksCache.encryptionKey', async () => {
  const sig = await pair('ES256');
  const sigJwk: JWK = { ...sig.jwk, kid: 'sig-1', use: 'sig', alg: 'ES256' };

  it('picks a use=enc key of the fitting kty, preferring one naming the alg, and returns its kid', async () => {
    const rsaNoAlg = await pair('RSA-OAEP-256', { modulusLength: 2048 });
    const rsaAlg = await pair('RSA-OAEP-256', { modulusLength: 2048 });
    const ec = await pair('ECDH-ES');
    const { cache } = cacheOf([
      sigJwk,
      { ...rsaNoAlg.jwk, kid: 'rsa-any', use: 'enc' },
      { ...ec.jwk, kid: 'ec-1', use: 'enc', alg: 'ECDH-ES' },
      { ...rsaAlg.jwk, kid: 'rsa-alg', use: 'enc', alg: 'RSA-OAEP-256' },
      { ...rsaAlg.jwk, kid: 'rsa-sig', use: 'sig', alg: 'RSA-OAEP-256' },
    ]);
    const chosen = await cache.encryptionKey('RSA-OAEP-256', { fipsMode: false });
    assert.equal(chosen.kid, 'rsa-alg');
    // It really is that key: the matching private key decrypts what it encrypted.
    const jwe = await new CompactEncrypt(new TextEncoder().encode('x'))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
      .encrypt(chosen.key);
    assert.equal(new TextDecoder().decode((await compactDecrypt(jwe, rsaAlg.privateKey)).plaintext), 'x');
    assert.equal((await cache.encryptionKey('ECDH-ES', { fipsMode: false })).kid, 'ec-1');
  });

  it('refuses keys for another alg and fails with a stable code when none fits', async () => {
    const rsa = await pair('RSA-OAEP-256', { modulusLength: 2048 });
    const { cache, hits } = cacheOf([sigJwk, { ...rsa.jwk, kid: 'rsa-other', use: 'enc', alg: 'RSA-OAEP' }]);
    await assert.rejects(
      cache.encryptionKey('RSA-OAEP-256', { fipsMode: false }),
      (e: unknown) =>
        e instanceof BffError &&
        e.code === 'BFF_IDP_CAPABILITY_MISSING' &&
        e.reason === 'jar_encryption_key_missing',
    );
    assert.equal(hits(), 1, 'the unknown-key refetch is rate-limited');
    assert.equal(cache.hasEncryptionKey('RSA-OAEP-256', false), false);
  });

  it('never chooses X25519 in FIPS mode', async () => {
    const x = await pair('ECDH-ES', { crv: 'X25519' });
    const { cache } = cacheOf([sigJwk, { ...x.jwk, kid: 'x25519', use: 'enc' }]);
    assert.equal((await cache.encryptionKey('ECDH-ES', { fipsMode: false })).kid, 'x25519');
    await assert.rejects(cache.encryptionKey('ECDH-ES', { fipsMode: true }), BffError);
  });

  it('refetches on request (the IdP refused the last object) and follows a rotation', async () => {
    const a = await pair('RSA-OAEP-256', { modulusLength: 2048 });
    const b = await pair('RSA-OAEP-256', { modulusLength: 2048 });
    let keys: JWK[] = [sigJwk, { ...a.jwk, kid: 'a', use: 'enc' }];
    const fetch = (async () =>
      new Response(JSON.stringify({ keys }), { status: 200 })) as unknown as IdpFetch;
    const cache = new JwksCache({ jwksUri: 'https://idp.example/jwks', fetch });
    assert.equal((await cache.encryptionKey('RSA-OAEP-256', { fipsMode: false })).kid, 'a');
    keys = [sigJwk, { ...b.jwk, kid: 'b', use: 'enc' }];
    assert.equal((await cache.encryptionKey('RSA-OAEP-256', { fipsMode: false })).kid, 'a', 'cached');
    assert.equal((await cache.encryptionKey('RSA-OAEP-256', { fipsMode: false, refresh: true })).kid, 'b');
  });
});
