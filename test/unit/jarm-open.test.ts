import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  CompactEncrypt,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  type JWSHeaderParameters,
  SignJWT,
} from 'jose';
import { type JarmEvents, type JarmOptions, openJarm, verifyJarm } from '../../src/oauth/jarm.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const ISSUER = 'https://idp.example.com';
const CLIENT = 'bff';

describe('openJarm: an encrypted JARM response is decrypted once in the callback', async () => {
  const sig = await generateKeyPair('ES256');
  const enc = await generateKeyPair('RSA-OAEP-256');
  const wrong = await generateKeyPair('RSA-OAEP-256');
  const jwks = createLocalJWKSet({
    keys: [{ ...(await exportJWK(sig.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }],
  });
  const events: JarmEvents & { failures: string[] } = {
    failures: [],
    verified() {},
    decryptionFailed() {},
    validationFailed(reason) {
      this.failures.push(reason);
    },
    replayDenied() {},
    typInvalid() {},
    audMismatch() {},
  };
  const options = (key: CryptoKey): JarmOptions => ({
    issuer: ISSUER,
    clientId: CLIENT,
    mode: 'query.jwt',
    algorithms: ['ES256'],
    decryption: { key, alg: 'RSA-OAEP-256', enc: 'A256GCM' },
    keys: {
      resolve: (h: JWSHeaderParameters) =>
        jwks(h, { payload: '', signature: '' } as never) as Promise<CryptoKey>,
    },
    replay: new MemoryStore(),
    events,
  });
  const response = async (state: string) => {
    const now = Math.floor(Date.now() / 1000);
    const jws = await new SignJWT({ iss: ISSUER, aud: CLIENT, exp: now + 60, iat: now, state, code: 'c' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .sign(sig.privateKey);
    return new CompactEncrypt(new TextEncoder().encode(jws))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', cty: 'JWT' })
      .encrypt(enc.publicKey);
  };

  it('reads the state, and verifyJarm reuses the opened layer instead of decrypting again', async () => {
    const r = await response('s1');
    const opened = await openJarm(r, options(enc.privateKey));
    assert.equal(opened.state, 's1');
    // With a key that cannot decrypt, verification succeeds only because it does not decrypt again.
    const params = await verifyJarm(
      r,
      { outerIss: null, expectedState: 's1', opened },
      options(wrong.privateKey),
    );
    assert.equal(params.get('code'), 'c');
  });

  it('ignores an opened layer that belongs to another response', async () => {
    const r1 = await response('s2');
    const r2 = await response('s3');
    const opened = await openJarm(r1, options(enc.privateKey));
    await assert.rejects(
      verifyJarm(r2, { outerIss: null, expectedState: 's3', opened }, options(wrong.privateKey)),
      (err: Error & { reason?: string }) => err.reason === 'decryption',
    );
  });

  it('refuses and counts what verifyJarm would refuse at the JWE layer (wrong key, plain JWS)', async () => {
    events.failures.length = 0;
    await assert.rejects(
      openJarm(await response('s4'), options(wrong.privateKey)),
      (err: Error & { reason?: string }) => err.reason === 'decryption',
    );
    const now = Math.floor(Date.now() / 1000);
    const plain = await new SignJWT({ iss: ISSUER, aud: CLIENT, exp: now + 60, state: 's5' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .sign(sig.privateKey);
    await assert.rejects(
      openJarm(plain, options(enc.privateKey)),
      (err: Error & { reason?: string }) => err.reason === 'encryption_required',
    );
    assert.deepEqual(events.failures, ['decryption', 'encryption_required']);
  });
});
