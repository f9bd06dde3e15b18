import { strict as assert } from 'node:assert';
import { before, describe, it } from 'node:test';
import {
  type CryptoKey,
  compactDecrypt,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
} from 'jose';
import type { SigningKey } from '../../src/config/types.js';
import {
  buildRequestObject,
  checkTopLevelDuplicates,
  type RequestObjectOptions,
} from '../../src/oauth/jar.js';

const ISSUER = 'https://idp.example';
const CLIENT = 'bff-client';
const NOW = 1_800_000_000;
const clock = () => NOW * 1000 + 999; // sub-second part must be floored

const PARAMS = {
  response_type: 'code',
  redirect_uri: 'https://bff.example/callback',
  scope: 'openid profile',
  state: 'st-1',
  nonce: 'n-1',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  code_challenge_method: 'S256',
  response_mode: 'jwt',
};

async function signingKey(alg: 'ES256' | 'PS256', kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

let es: SigningKey;
let ps: SigningKey;
let rsaEnc: { publicKey: CryptoKey; privateKey: CryptoKey };
let ecEnc: { publicKey: CryptoKey; privateKey: CryptoKey };

before(async () => {
  es = await signingKey('ES256', 'bff-es');
  ps = await signingKey('PS256', 'bff-ps');
  rsaEnc = await generateKeyPair('RSA-OAEP-256');
  ecEnc = await generateKeyPair('ECDH-ES');
});

function opts(extra: Partial<RequestObjectOptions> = {}): RequestObjectOptions {
  return {
    clientId: CLIENT,
    audience: ISSUER,
    signingKey: es,
    alg: 'ES256',
    allowedAlgs: ['PS256', 'ES256'],
    clock,
    ...extra,
  };
}

async function publicKey(k: SigningKey): Promise<CryptoKey> {
  return (await importJWK(k.publicJwk, k.alg)) as CryptoKey;
}

describe('buildRequestObject: claims and header (RFC 9101, FAPI 2.0 MS §5.3.2)', () => {
  it('signs every parameter as a claim with iss, aud, client_id, iat, nbf, exp, jti and no sub', async () => {
    const jws = await buildRequestObject(PARAMS, opts());
    const header = decodeProtectedHeader(jws);
    assert.deepEqual(header, { alg: 'ES256', kid: 'bff-es', typ: 'oauth-authz-req+jwt' });
    const claims = decodeJwt(jws);
    for (const [k, v] of Object.entries(PARAMS)) assert.equal(claims[k], v, k);
    assert.equal(claims.iss, CLIENT);
    assert.equal(claims.aud, ISSUER, 'aud is the issuer, as a string');
    assert.equal(typeof claims.aud, 'string');
    assert.equal(claims.client_id, CLIENT);
    assert.equal(claims.iat, NOW);
    assert.equal(claims.nbf, NOW);
    assert.equal(claims.exp, NOW + 60);
    assert.equal(claims.sub, undefined);
    assert.equal(claims.request, undefined);
    assert.equal(claims.request_uri, undefined);
    assert.ok(typeof claims.jti === 'string' && Buffer.from(claims.jti, 'base64url').length >= 16);
  });

  it('uses a fresh jti every time', async () => {
    const a = decodeJwt(await buildRequestObject(PARAMS, opts())).jti;
    const b = decodeJwt(await buildRequestObject(PARAMS, opts())).jti;
    assert.notEqual(a, b);
  });

  it('verifies with the public key, for ES256 and PS256', async () => {
    for (const k of [es, ps]) {
      const jws = await buildRequestObject(PARAMS, opts({ signingKey: k, alg: k.alg }));
      const { payload, protectedHeader } = await jwtVerify(jws, await publicKey(k), {
        algorithms: [k.alg],
        issuer: CLIENT,
        audience: ISSUER,
        typ: 'oauth-authz-req+jwt',
        currentDate: new Date(clock()),
      });
      assert.equal(protectedHeader.kid, k.kid);
      assert.equal(payload.state, 'st-1');
    }
  });

  it('encodes max_age as a number and claims as JSON (JAR-1)', async () => {
    const claims = decodeJwt(
      await buildRequestObject({ ...PARAMS, max_age: '300', claims: '{"id_token":{"acr":null}}' }, opts()),
    );
    assert.equal(claims.max_age, 300);
    assert.deepEqual(claims.claims, { id_token: { acr: null } });
    await assert.rejects(buildRequestObject({ ...PARAMS, max_age: '-1' }, opts()), /max_age/);
    await assert.rejects(buildRequestObject({ ...PARAMS, claims: 'nope' }, opts()), /claims/);
  });

  it('keeps the lifetime at 60 s or less', async () => {
    const short = decodeJwt(await buildRequestObject(PARAMS, opts({ lifetimeSec: 30 })));
    assert.equal((short.exp ?? 0) - (short.iat ?? 0), 30);
    for (const lifetimeSec of [61, 0, 3600, 1.5]) {
      await assert.rejects(buildRequestObject(PARAMS, opts({ lifetimeSec })), /lifetimeSec/);
    }
  });
});

describe('buildRequestObject: nested JWT (sign, then encrypt)', () => {
  for (const [alg, enc] of [
    ['RSA-OAEP-256', 'A256GCM'],
    ['RSA-OAEP-256', 'A256CBC-HS512'],
    ['ECDH-ES', 'A256GCM'],
    ['ECDH-ES+A256KW', 'A256CBC-HS512'],
  ] as const) {
    it(`${alg} / ${enc}: decrypts, then the inner JWS verifies`, async () => {
      const pair = alg === 'RSA-OAEP-256' ? rsaEnc : ecEnc;
      const jwe = await buildRequestObject(
        PARAMS,
        opts({ signingKey: ps, alg: 'PS256', encryption: { key: pair.publicKey, kid: 'idp-enc', alg, enc } }),
      );
      assert.equal(jwe.split('.').length, 5);
      const { plaintext, protectedHeader } = await compactDecrypt(jwe, pair.privateKey);
      assert.equal(protectedHeader.cty, 'JWT');
      assert.equal(protectedHeader.kid, 'idp-enc');
      assert.equal(protectedHeader.alg, alg);
      assert.equal(protectedHeader.enc, enc);
      const inner = new TextDecoder().decode(plaintext);
      const { payload } = await jwtVerify(inner, await publicKey(ps), { currentDate: new Date(clock()) });
      assert.equal(payload.client_id, CLIENT);
    });
  }

  it('refuses weak encryption suites', async () => {
    for (const [alg, enc] of [
      ['RSA1_5', 'A256GCM'],
      ['RSA-OAEP', 'A256GCM'],
      ['dir', 'A256GCM'],
      ['RSA-OAEP-256', 'A128GCM'],
      ['RSA-OAEP-256', 'A128CBC-HS256'],
    ]) {
      await assert.rejects(
        buildRequestObject(PARAMS, opts({ encryption: { key: rsaEnc.publicKey, alg: alg!, enc: enc! } })),
        /encryption (alg|enc)/,
        `${alg}/${enc}`,
      );
    }
  });
});

describe('buildRequestObject: refusals', () => {
  it('refuses alg none and an alg outside the allowlist', async () => {
    await assert.rejects(buildRequestObject(PARAMS, opts({ alg: 'none' as 'ES256' })), /not allowed/);
    await assert.rejects(buildRequestObject(PARAMS, opts({ allowedAlgs: ['PS256'] })), /not allowed/);
    await assert.rejects(
      buildRequestObject(PARAMS, opts({ allowedAlgs: ['RS256'], alg: 'RS256' as 'ES256' })),
      /not a FAPI 2.0/,
    );
  });

  it('refuses a signing key for another alg', async () => {
    await assert.rejects(buildRequestObject(PARAMS, opts({ signingKey: ps, alg: 'ES256' })), /signing key/);
  });

  it('refuses request and request_uri inside the object (JAR-3)', async () => {
    await assert.rejects(buildRequestObject({ ...PARAMS, request: 'x' }, opts()), /request must not/);
    await assert.rejects(
      buildRequestObject({ ...PARAMS, request_uri: 'urn:x' }, opts()),
      /request_uri must not/,
    );
  });

  it('refuses parameters that would override the builder-owned claims', async () => {
    for (const name of ['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'sub']) {
      await assert.rejects(
        buildRequestObject({ ...PARAMS, [name]: 'x' }, opts()),
        /set by the builder/,
        name,
      );
    }
  });

  it('refuses a client_id parameter differing from the client', async () => {
    await assert.rejects(buildRequestObject({ ...PARAMS, client_id: 'other' }, opts()), /client_id/);
    const same = decodeJwt(await buildRequestObject({ ...PARAMS, client_id: CLIENT }, opts()));
    assert.equal(same.client_id, CLIENT);
  });
});

describe('checkTopLevelDuplicates (seed 002 Milestone 1)', () => {
  const object = { ...PARAMS, client_id: CLIENT, max_age: 300, claims: { id_token: { acr: null } } };

  it('accepts absent or exactly equal top-level parameters, and ignores request/request_uri', () => {
    checkTopLevelDuplicates({ client_id: CLIENT, request_uri: 'urn:x', request: 'eyJ...' }, object);
    checkTopLevelDuplicates({ client_id: CLIENT, scope: 'openid profile', state: 'st-1' }, object);
    checkTopLevelDuplicates({ prompt: 'login' }, object);
    checkTopLevelDuplicates({ max_age: '300', claims: '{"id_token":{"acr":null}}' }, object);
  });

  it('throws when a duplicate differs', () => {
    assert.throws(() => checkTopLevelDuplicates({ scope: 'openid admin' }, object), /scope/);
    assert.throws(() => checkTopLevelDuplicates({ state: 'st-1 ' }, object), /state/);
    assert.throws(
      () => checkTopLevelDuplicates({ redirect_uri: 'https://evil.example/cb' }, object),
      /redirect_uri/,
    );
    assert.throws(() => checkTopLevelDuplicates({ max_age: '0300' }, object), /max_age/);
    assert.throws(() => checkTopLevelDuplicates({ claims: '{}' }, object), /claims/);
    assert.throws(() => checkTopLevelDuplicates({ client_id: 'other' }, object), /client_id/);
  });
});
