import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import {
  base64url,
  calculateJwkThumbprint,
  createLocalJWKSet,
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWSHeaderParameters,
  type JWTHeaderParameters,
  SignJWT,
} from 'jose';
import { BffError } from '../../src/errors.js';
import type { KeyResolver } from '../../src/jose/jwt-policy.js';
import {
  type AccessTokenVerifier,
  DPOP_FAILURE_REASONS,
  type DpopFailureReason,
  DpopNonces,
  type DpopRequest,
  type DpopValidationOptions,
  introspectionVerifier,
  jwtAccessTokenVerifier,
  validateDpopRequest,
} from '../../src/dpop/validation.js';
import { MemoryStore } from '../../src/store/memory-store.js';

// Real proofs and tokens signed with jose; only the clock is fake.
const T0 = 1_800_000_000_000;
let now = T0;
const clock = () => now;
const nowSec = () => Math.floor(now / 1000);

const ISS = 'https://idp.example';
const AUD = 'https://bff.example';
const URL_WITH_QUERY = 'https://bff.example/api/orders?limit=10';
const HTU = 'https://bff.example/api/orders';
const ALGS = ['ES256', 'PS256'] as const;
const ALGS_PARAM = 'algs="ES256 PS256"';

interface ProofKey {
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
  privateJwk: JWK;
  jkt: string;
}

let idpKey: CryptoKey;
let rogueIdpKey: CryptoKey;
let idpKeys: KeyResolver;
let es: ProofKey;
let ps: ProofKey;
let thief: ProofKey;

async function proofKey(alg: string): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return {
    alg,
    privateKey,
    jwk,
    privateJwk: await exportJWK(privateKey),
    jkt: await calculateJwkThumbprint(jwk, 'sha256'),
  };
}

before(async () => {
  const idp = await generateKeyPair('ES256', { extractable: true });
  idpKey = idp.privateKey;
  rogueIdpKey = (await generateKeyPair('ES256')).privateKey;
  const jwks = createLocalJWKSet({
    keys: [{ ...(await exportJWK(idp.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' }],
  });
  idpKeys = { resolve: (header: JWSHeaderParameters) => jwks(header) };
  [es, ps, thief] = await Promise.all([proofKey('ES256'), proofKey('PS256'), proofKey('ES256')]);
});

const ath = (token: string) => createHash('sha256').update(token).digest('base64url');
const randomId = () => randomBytes(16).toString('base64url');

/** An RFC 9068 access token from the in-test IdP, bound to `jkt` unless claims say otherwise. */
async function accessToken(
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
  key: CryptoKey = idpKey,
): Promise<string> {
  return new SignJWT({
    iss: ISS,
    aud: AUD,
    sub: 'svc-reports',
    client_id: 'svc-reports',
    iat: nowSec(),
    exp: nowSec() + 3600,
    jti: randomId(),
    cnf: { jkt: es.jkt },
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', kid: 'idp-1', typ: 'at+jwt', ...header } as JWTHeaderParameters)
    .sign(key);
}

interface ProofOptions {
  key?: ProofKey;
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  /** Sign with this instead of the key whose jwk is embedded. */
  signWith?: CryptoKey | Uint8Array;
  crit?: Record<string, boolean>;
}

/** A DPoP proof (RFC 9449 §4.2) for GET HTU with `token`; options override header and claims. */
async function proof(token: string, o: ProofOptions = {}): Promise<string> {
  const k = o.key ?? es;
  return new SignJWT({
    jti: randomId(),
    htm: 'GET',
    htu: HTU,
    iat: nowSec(),
    ath: ath(token),
    ...o.claims,
  })
    .setProtectedHeader({ alg: k.alg, typ: 'dpop+jwt', jwk: k.jwk, ...o.header } as JWTHeaderParameters)
    .sign(o.signWith ?? k.privateKey, o.crit ? { crit: o.crit } : undefined);
}

function jwtVerifier(): AccessTokenVerifier {
  return jwtAccessTokenVerifier({ issuer: ISS, audience: AUD, keys: idpKeys, algorithms: ['ES256'], clock });
}

function setup(extra: Partial<DpopValidationOptions> = {}) {
  const failures: DpopFailureReason[] = [];
  const store = new MemoryStore({ clock, sweepIntervalMs: 0 });
  const opts: DpopValidationOptions = {
    verifier: jwtVerifier(),
    proofAlgorithms: ALGS,
    replay: store,
    events: { failure: (reason) => failures.push(reason) },
    clock,
    ...extra,
  };
  return { opts, failures, store };
}

function request(token: string, dpop: DpopRequest['dpop'], over: Partial<DpopRequest> = {}): DpopRequest {
  return { method: 'GET', url: URL_WITH_QUERY, authorization: `DPoP ${token}`, dpop, ...over };
}

type Challenge = 'none' | 'invalid_dpop_proof' | 'invalid_token' | 'use_dpop_nonce';

/** The refusal: one reason to events, a 401 with the RFC 9449 §7.1 challenge, the token never echoed. */
async function refused(
  promise: Promise<unknown>,
  failures: DpopFailureReason[],
  reason: DpopFailureReason,
  challenge: Challenge,
  secret?: string,
): Promise<BffError> {
  let caught: BffError | undefined;
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BffError, `expected BffError, got ${String(err)}`);
    caught = err;
    return true;
  });
  const err = caught as BffError;
  assert.equal(err.reason, reason);
  assert.deepEqual(failures, [reason]);
  assert.equal(err.code, 'BFF_SESSION_REQUIRED');
  assert.equal(err.statusCode, 401);
  const www = err.headers?.['WWW-Authenticate'];
  if (challenge === 'none') assert.equal(www, `DPoP ${ALGS_PARAM}`);
  else
    assert.match(
      www ?? '',
      new RegExp(`^DPoP error="${challenge}", error_description="[^"\\\\]+", ${ALGS_PARAM}$`),
    );
  if (challenge !== 'use_dpop_nonce') assert.equal(err.headers?.['DPoP-Nonce'], undefined);
  if (secret !== undefined) {
    const shown = `${err.message} ${err.detail ?? ''} ${JSON.stringify(err.headers)}`;
    assert.ok(!shown.includes(secret), 'the token must never be echoed');
  }
  return err;
}

describe('validateDpopRequest: accepted requests', () => {
  it('accepts an ES256 proof with a DPoP-bound JWT access token', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const result = await validateDpopRequest(request(token, await proof(token)), opts);
    assert.equal(result.jkt, es.jkt);
    assert.equal(result.claims.sub, 'svc-reports');
    assert.deepEqual(result.claims.cnf, { jkt: es.jkt });
    assert.deepEqual(failures, []);
  });

  it('accepts a PS256 proof', async () => {
    const { opts } = setup();
    const token = await accessToken({ cnf: { jkt: ps.jkt } });
    const result = await validateDpopRequest(request(token, await proof(token, { key: ps })), opts);
    assert.equal(result.jkt, ps.jkt);
  });

  it('accepts access tokens typed JWT as well as at+jwt', async () => {
    const { opts } = setup();
    const token = await accessToken({}, { typ: 'JWT' });
    await validateDpopRequest(request(token, await proof(token)), opts);
  });

  it('accepts an opaque token through introspection (active, cnf.jkt)', async () => {
    const seen: string[] = [];
    const verifier = introspectionVerifier(async (token) => {
      seen.push(token);
      return { active: true, sub: 'svc-batch', token_type: 'DPoP', cnf: { jkt: es.jkt } };
    });
    const { opts } = setup({ verifier });
    const token = 'opaque-' + randomId();
    const result = await validateDpopRequest(request(token, await proof(token)), opts);
    assert.equal(result.claims.sub, 'svc-batch');
    assert.deepEqual(seen, [token]);
  });

  it('accepts the scheme in any case and typ dpop+jwt in any case', async () => {
    const { opts } = setup();
    const token = await accessToken();
    const p = await proof(token, { header: { typ: 'DPoP+JWT' } });
    await validateDpopRequest(request(token, p, { authorization: `dpop ${token}` }), opts);
  });

  it('compares htu ignoring query and fragment, on both sides (RFC 9449 §4.3 step 9)', async () => {
    const { opts } = setup();
    const token = await accessToken();
    await validateDpopRequest(request(token, await proof(token), { url: `${HTU}?a=1&b=2#frag` }), opts);
    const withQuery = await proof(token, { claims: { htu: `${HTU}?other=1` } });
    await validateDpopRequest(request(token, withQuery), opts);
  });

  it('compares htu after RFC 3986 §6.2.2-6.2.3 normalisation (case, default port, %-encoding, dots)', async () => {
    const { opts } = setup();
    const token = await accessToken();
    const url = 'https://BFF.Example:443/api/%7eorders/./x?limit=1';
    const p = await proof(token, { claims: { htu: 'HTTPS://bff.example/api/~orders/y/../x' } });
    await validateDpopRequest(request(token, p, { url }), opts);
    const p2 = await proof(token, { claims: { htu: 'http://bff.example:80/a%2fb' } });
    await validateDpopRequest(request(token, p2, { url: 'http://bff.example/a%2Fb' }), opts);
  });

  it('accepts iat at the edges of the window (60 s old, 5 s ahead)', async () => {
    const { opts } = setup();
    const token = await accessToken();
    await validateDpopRequest(request(token, await proof(token, { claims: { iat: nowSec() - 60 } })), opts);
    await validateDpopRequest(request(token, await proof(token, { claims: { iat: nowSec() + 5 } })), opts);
  });

  it('scopes jti to the proof key: another key may use the same jti', async () => {
    const { opts } = setup();
    const jti = randomId();
    const t1 = await accessToken();
    await validateDpopRequest(request(t1, await proof(t1, { claims: { jti } })), opts);
    const t2 = await accessToken({ cnf: { jkt: thief.jkt } });
    await validateDpopRequest(request(t2, await proof(t2, { key: thief, claims: { jti } })), opts);
  });
});

describe('validateDpopRequest: Authorization and DPoP headers', () => {
  it('missing_authorization: no Authorization header (challenge without error code, RFC 6750 §3.1)', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const p = await proof(token);
    await refused(
      validateDpopRequest(request(token, p, { authorization: undefined }), opts),
      failures,
      'missing_authorization',
      'none',
    );
  });

  it('wrong_scheme: a DPoP-bound token presented as Bearer (RFC 9449 §7.2)', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const p = await proof(token);
    await refused(
      validateDpopRequest(request(token, p, { authorization: `Bearer ${token}` }), opts),
      failures,
      'wrong_scheme',
      'none',
      token,
    );
  });

  it('missing_proof: DPoP scheme without a DPoP header', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    await refused(
      validateDpopRequest(request(token, undefined), opts),
      failures,
      'missing_proof',
      'invalid_dpop_proof',
      token,
    );
  });

  it('multiple_proofs: two DPoP headers (as an array)', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const proofs = [await proof(token), await proof(token)];
    await refused(
      validateDpopRequest(request(token, proofs), opts),
      failures,
      'multiple_proofs',
      'invalid_dpop_proof',
    );
  });

  it('multiple_proofs: two DPoP headers joined by Node with ", "', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const joined = `${await proof(token)}, ${await proof(token)}`;
    await refused(
      validateDpopRequest(request(token, joined), opts),
      failures,
      'multiple_proofs',
      'invalid_dpop_proof',
    );
  });

  it('malformed_proof: not a compact JWS', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    await refused(
      validateDpopRequest(request(token, 'not-a-jws'), opts),
      failures,
      'malformed_proof',
      'invalid_dpop_proof',
    );
  });

  it('malformed_proof: a signed proof larger than any real one', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const p = await proof(token, { claims: { pad: 'x'.repeat(9000) } });
    await refused(
      validateDpopRequest(request(token, p), opts),
      failures,
      'malformed_proof',
      'invalid_dpop_proof',
    );
  });

  it('malformed_proof: whitespace inside a segment (jose would strip it and verify)', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const [h, payload, sig] = (await proof(token)).split('.') as [string, string, string];
    const p = `${h}.${payload}.${sig.slice(0, 10)} ${sig.slice(10)}`;
    await refused(
      validateDpopRequest(request(token, p), opts),
      failures,
      'malformed_proof',
      'invalid_dpop_proof',
    );
  });

  it('malformed_proof: a protected header that is not JSON', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const [, payload, sig] = (await proof(token)).split('.');
    const p = `${base64url.encode('{not json')}.${payload}.${sig}`;
    await refused(
      validateDpopRequest(request(token, p), opts),
      failures,
      'malformed_proof',
      'invalid_dpop_proof',
    );
  });

  it('malformed_proof: a crit header (no extension is understood)', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const p = await proof(token, { header: { crit: ['b64'], b64: true }, crit: { b64: true } });
    await refused(
      validateDpopRequest(request(token, p), opts),
      failures,
      'malformed_proof',
      'invalid_dpop_proof',
    );
  });

  it('token_invalid: an Authorization value that is not token68', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    await refused(
      validateDpopRequest(request(token, await proof(token), { authorization: `DPoP ${token} extra` }), opts),
      failures,
      'token_invalid',
      'invalid_token',
      token,
    );
  });
});

describe('validateDpopRequest: proof header and signature (RFC 9449 §4.3 steps 4-7)', () => {
  it('typ: a proof typed JWT', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const p = await proof(token, { header: { typ: 'JWT' } });
    await refused(validateDpopRequest(request(token, p), opts), failures, 'typ', 'invalid_dpop_proof');
  });

  it('typ: a proof without typ', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const p = await proof(token, { header: { typ: undefined } });
    await refused(validateDpopRequest(request(token, p), opts), failures, 'typ', 'invalid_dpop_proof');
  });

  it('alg: an unsigned proof (alg none)', async () => {
    const { opts, failures } = setup({ proofAlgorithms: ['ES256', 'PS256', 'none'] });
    const token = await accessToken();
    const [, payload] = (await proof(token)).split('.');
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: es.jwk }));
    await refused(
      validateDpopRequest(request(token, `${header}.${payload}.`), opts),
      failures,
      'alg',
      'invalid_dpop_proof',
    );
  });

  it('alg: HS256 even when listed (symmetric, RFC 9449 §4.3 step 5)', async () => {
    const { opts, failures } = setup({ proofAlgorithms: ['HS256', 'ES256', 'PS256'] });
    const token = await accessToken();
    const p = await proof(token, { header: { alg: 'HS256' }, signWith: new Uint8Array(32).fill(7) });
    await refused(validateDpopRequest(request(token, p), opts), failures, 'alg', 'invalid_dpop_proof');
  });

  it('alg: RS256 even when listed, and an asymmetric alg that is not listed', async () => {
    const rsa = await proofKey('RS256');
    const { opts, failures } = setup({ proofAlgorithms: ['RS256', 'ES256', 'PS256'] });
    const token = await accessToken({ cnf: { jkt: rsa.jkt } });
    await refused(
      validateDpopRequest(request(token, await proof(token, { key: rsa })), opts),
      failures,
      'alg',
      'invalid_dpop_proof',
    );
    const es384 = await proofKey('ES384');
    const second = setup();
    const t2 = await accessToken({ cnf: { jkt: es384.jkt } });
    await refused(
      validateDpopRequest(request(t2, await proof(t2, { key: es384 })), second.opts),
      second.failures,
      'alg',
      'invalid_dpop_proof',
    );
  });

  it('jwk: a jwk carrying the private key (d)', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const p = await proof(token, { header: { jwk: es.privateJwk } });
    await refused(validateDpopRequest(request(token, p), opts), failures, 'jwk', 'invalid_dpop_proof');
  });

  it('jwk: no jwk, or one that does not fit the alg', async () => {
    const token = await accessToken();
    for (const jwk of [
      undefined,
      ps.jwk,
      { ...es.jwk, kty: 'OKP' },
      { ...es.jwk, crv: 'P-384' },
      { ...es.jwk, use: 'enc' },
      { ...es.jwk, alg: 'ES384' },
    ]) {
      const { opts, failures } = setup();
      const p = await proof(token, { header: { jwk } });
      await refused(validateDpopRequest(request(token, p), opts), failures, 'jwk', 'invalid_dpop_proof');
    }
  });

  it('jwk: an RSA key below 2048 or above 4096 bits, or with an oversized exponent', async () => {
    const token = await accessToken();
    const big = base64url.encode(Uint8Array.from(randomBytes(640), (b, i) => (i === 0 ? b | 0x80 : b)));
    const small = base64url.encode(Uint8Array.from(randomBytes(128), (b, i) => (i === 0 ? b | 0x80 : b)));
    const longE = base64url.encode(Uint8Array.from(randomBytes(9), (b, i) => (i === 0 ? b | 0x80 : b | 1)));
    for (const jwk of [
      { ...ps.jwk, n: big },
      { ...ps.jwk, n: small },
      { ...ps.jwk, e: longE },
    ]) {
      const { opts, failures } = setup();
      const p = await proof(token, { key: ps, header: { jwk } });
      await refused(validateDpopRequest(request(token, p), opts), failures, 'jwk', 'invalid_dpop_proof');
    }
  });

  it('signature: a proof signed by another key than its jwk', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const p = await proof(token, { signWith: thief.privateKey });
    await refused(validateDpopRequest(request(token, p), opts), failures, 'signature', 'invalid_dpop_proof');
  });

  it('a proof with a bad signature does not enter the replay cache', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const jti = randomId();
    const forged = await proof(token, { claims: { jti }, signWith: thief.privateKey });
    await refused(
      validateDpopRequest(request(token, forged), opts),
      failures,
      'signature',
      'invalid_dpop_proof',
    );
    await validateDpopRequest(request(token, await proof(token, { claims: { jti } })), opts);
  });
});

describe('validateDpopRequest: proof claims (RFC 9449 §4.3 steps 8-12)', () => {
  it('htm: a proof for POST sent with GET', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const p = await proof(token, { claims: { htm: 'POST' } });
    await refused(validateDpopRequest(request(token, p), opts), failures, 'htm', 'invalid_dpop_proof');
  });

  it('htu: another path, host, port or scheme', async () => {
    const token = await accessToken();
    for (const htu of [
      'https://bff.example/api/admin',
      'https://evil.example/api/orders',
      'https://bff.example:8443/api/orders',
      'http://bff.example/api/orders',
      'https://user@bff.example/api/orders',
      'not a url',
    ]) {
      const { opts, failures } = setup();
      const p = await proof(token, { claims: { htu } });
      await refused(validateDpopRequest(request(token, p), opts), failures, 'htu', 'invalid_dpop_proof');
    }
  });

  it('iat: too old, too far ahead, missing', async () => {
    const token = await accessToken();
    for (const iat of [nowSec() - 61, nowSec() + 6, undefined]) {
      const { opts, failures } = setup();
      const p = await proof(token, { claims: { iat } });
      await refused(validateDpopRequest(request(token, p), opts), failures, 'iat', 'invalid_dpop_proof');
    }
  });

  it('iat: a shorter configured window', async () => {
    const { opts, failures } = setup({ iatWindowSec: 10 });
    const token = await accessToken();
    const p = await proof(token, { claims: { iat: nowSec() - 11 } });
    await refused(validateDpopRequest(request(token, p), opts), failures, 'iat', 'invalid_dpop_proof');
  });

  it('jti_missing: a proof without jti', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const p = await proof(token, { claims: { jti: undefined } });
    await refused(
      validateDpopRequest(request(token, p), opts),
      failures,
      'jti_missing',
      'invalid_dpop_proof',
    );
  });

  it('replay: the same proof twice', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const p = await proof(token);
    await validateDpopRequest(request(token, p), opts);
    await refused(validateDpopRequest(request(token, p), opts), failures, 'replay', 'invalid_dpop_proof');
  });

  it('replay: a new proof reusing a jti, even after the proof window of the first has passed', async () => {
    const { opts, failures } = setup();
    const token = await accessToken();
    const jti = randomId();
    await validateDpopRequest(request(token, await proof(token, { claims: { jti } })), opts);
    now += 64_000; // the first proof's iat is now out of the window; its jti must still be known
    try {
      const again = await proof(token, { claims: { jti } });
      await refused(
        validateDpopRequest(request(token, again), opts),
        failures,
        'replay',
        'invalid_dpop_proof',
      );
    } finally {
      now = T0;
    }
  });

  it('ath: missing, or the hash of another token', async () => {
    const token = await accessToken();
    for (const value of [undefined, ath('another-token')]) {
      const { opts, failures } = setup();
      const p = await proof(token, { claims: { ath: value } });
      await refused(validateDpopRequest(request(token, p), opts), failures, 'ath', 'invalid_dpop_proof');
    }
  });
});

describe('validateDpopRequest: server nonces (RFC 9449 §8, §9)', () => {
  const secret = new Uint8Array(32).fill(1);

  it('challenges a proof without nonce, then accepts the retry with the nonce', async () => {
    const nonces = new DpopNonces({ secret, clock });
    const { opts, failures } = setup({ nonces });
    const token = await accessToken();
    const err = await refused(
      validateDpopRequest(request(token, await proof(token)), opts),
      failures,
      'nonce_required',
      'use_dpop_nonce',
    );
    const nonce = err.headers?.['DPoP-Nonce'];
    assert.equal(nonce, nonces.current());
    assert.match(
      err.headers?.['WWW-Authenticate'] ?? '',
      /error_description="Resource server requires nonce in DPoP proof"/,
    );
    const result = await validateDpopRequest(request(token, await proof(token, { claims: { nonce } })), opts);
    assert.equal(result.jkt, es.jkt);
    assert.deepEqual(failures, ['nonce_required']);
  });

  it('nonce_invalid: a nonce made with another secret', async () => {
    const nonces = new DpopNonces({ secret, clock });
    const other = new DpopNonces({ secret: new Uint8Array(32).fill(2), clock });
    const { opts, failures } = setup({ nonces });
    const token = await accessToken();
    const p = await proof(token, { claims: { nonce: other.current() } });
    const err = await refused(
      validateDpopRequest(request(token, p), opts),
      failures,
      'nonce_invalid',
      'use_dpop_nonce',
    );
    assert.equal(err.headers?.['DPoP-Nonce'], nonces.current());
  });

  it('nonce_invalid: a nonce two windows old; one window old still passes', async () => {
    const nonces = new DpopNonces({ secret, windowSec: 60, clock });
    const { opts, failures } = setup({ nonces });
    const token = await accessToken();
    const nonce = nonces.current();
    try {
      now = T0 + 60_000;
      await validateDpopRequest(request(token, await proof(token, { claims: { nonce } })), opts);
      now = T0 + 120_000;
      const p = await proof(token, { claims: { nonce } });
      const err = await refused(
        validateDpopRequest(request(token, p), opts),
        failures,
        'nonce_invalid',
        'use_dpop_nonce',
      );
      assert.notEqual(err.headers?.['DPoP-Nonce'], nonce);
      assert.equal(err.headers?.['DPoP-Nonce'], nonces.current());
    } finally {
      now = T0;
    }
  });

  it('instances sharing the secret accept each other’s nonces; garbage is refused', () => {
    const a = new DpopNonces({ secret, clock });
    const b = new DpopNonces({ secret: Uint8Array.from(secret), clock });
    assert.ok(b.isValid(a.current()));
    assert.ok(!a.isValid(''));
    assert.ok(!a.isValid(a.current().slice(1)));
    assert.throws(() => new DpopNonces({ secret: new Uint8Array(16) }), TypeError);
  });
});

describe('validateDpopRequest: the access token and its binding (RFC 9449 §6, §7)', () => {
  it('token_invalid: signed by a key the IdP does not publish, wrong issuer, wrong audience', async () => {
    for (const token of [
      await accessToken({}, {}, rogueIdpKey),
      await accessToken({}, { kid: 'unknown' }, rogueIdpKey),
      await accessToken({ iss: 'https://other-idp.example' }),
      await accessToken({ aud: 'https://other-api.example' }),
      await accessToken({}, { typ: 'dpop+jwt' }),
    ]) {
      const { opts, failures } = setup();
      await refused(
        validateDpopRequest(request(token, await proof(token)), opts),
        failures,
        'token_invalid',
        'invalid_token',
        token,
      );
    }
  });

  it('token_inactive: an expired JWT, and introspection saying active: false', async () => {
    const expired = await accessToken({ iat: nowSec() - 3600, exp: nowSec() - 60 });
    const first = setup();
    await refused(
      validateDpopRequest(request(expired, await proof(expired)), first.opts),
      first.failures,
      'token_inactive',
      'invalid_token',
      expired,
    );
    const { opts, failures } = setup({ verifier: introspectionVerifier(async () => ({ active: false })) });
    const opaque = 'opaque-' + randomId();
    await refused(
      validateDpopRequest(request(opaque, await proof(opaque)), opts),
      failures,
      'token_inactive',
      'invalid_token',
      opaque,
    );
  });

  it('cnf_missing: a token that is not DPoP-bound', async () => {
    const { opts, failures } = setup();
    const token = await accessToken({ cnf: undefined });
    await refused(
      validateDpopRequest(request(token, await proof(token)), opts),
      failures,
      'cnf_missing',
      'invalid_token',
      token,
    );
  });

  it('jkt_mismatch: a stolen token replayed with a proof from another key', async () => {
    const { opts, failures } = setup();
    const stolen = await accessToken(); // bound to es
    const p = await proof(stolen, { key: thief }); // a perfect proof, by the thief's own key
    await refused(
      validateDpopRequest(request(stolen, p), opts),
      failures,
      'jkt_mismatch',
      'invalid_token',
      stolen,
    );
  });

  it('token_invalid: a verifier that returns no claims object', async () => {
    const verifier = { verify: async () => null } as unknown as AccessTokenVerifier;
    const { opts, failures } = setup({ verifier });
    const token = 'opaque-' + randomId();
    await refused(
      validateDpopRequest(request(token, await proof(token)), opts),
      failures,
      'token_invalid',
      'invalid_token',
    );
  });

  it('does not ask the verifier about a token whose proof failed', async () => {
    let calls = 0;
    const verifier: AccessTokenVerifier = {
      async verify() {
        calls++;
        return { cnf: { jkt: es.jkt } };
      },
    };
    const { opts, failures } = setup({ verifier });
    const token = 'opaque-' + randomId();
    const p = await proof(token, { claims: { htm: 'DELETE' } });
    await refused(validateDpopRequest(request(token, p), opts), failures, 'htm', 'invalid_dpop_proof');
    assert.equal(calls, 0);
  });

  it('outages propagate unchanged and are not counted as refusals', async () => {
    const outage = new BffError('BFF_IDP_UNAVAILABLE', { reason: 'introspection_timeout' });
    let idpDown = true;
    const verifier = introspectionVerifier(async () => {
      if (idpDown) throw outage;
      return { active: true, cnf: { jkt: es.jkt } };
    });
    const { opts, failures, store } = setup({ verifier });
    const token = 'opaque-' + randomId();
    await assert.rejects(
      validateDpopRequest(request(token, await proof(token)), opts),
      (err) => err === outage,
    );
    // The replay cache is written only once the token is verified: a store outage shows then.
    idpDown = false;
    await store.close();
    await assert.rejects(validateDpopRequest(request(token, await proof(token)), opts), (err: unknown) => {
      assert.ok(err instanceof BffError);
      return err.code === 'BFF_STORE_UNAVAILABLE';
    });
    assert.deepEqual(failures, []);
  });
});

describe('configuration', () => {
  it('refuses an allowlist with no supported asymmetric alg, and a JWT verifier without audience', async () => {
    const { opts } = setup({ proofAlgorithms: ['none', 'HS256', 'RS256'] });
    const token = await accessToken();
    await assert.rejects(validateDpopRequest(request(token, await proof(token)), opts), TypeError);
    assert.throws(
      () => jwtAccessTokenVerifier({ issuer: ISS, keys: idpKeys, algorithms: ['ES256'] }),
      TypeError,
    );
  });

  it('lists every reason once', () => {
    assert.equal(new Set(DPOP_FAILURE_REASONS).size, 21);
  });
});
