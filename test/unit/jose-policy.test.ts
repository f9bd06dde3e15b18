import { strict as assert } from 'node:assert';
import { before, describe, it } from 'node:test';
import {
  base64url,
  CompactSign,
  type CryptoKey,
  generateKeyPair,
  type JWSHeaderParameters,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose';
import { BffError } from '../../src/errors.js';
import {
  type JwtPolicy,
  JwtPolicyError,
  type JwtRefusal,
  type KeyResolver,
  verifyJws,
} from '../../src/jose/jwt-policy.js';

const NOW = 1_800_000_000; // seconds
const clock = () => NOW * 1000;
const ISS = 'https://idp.example';
const AUD = 'bff-client';

interface Pair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}
let es: Pair;
let ps: Pair;
let other: Pair;

before(async () => {
  es = await generateKeyPair('ES256');
  ps = await generateKeyPair('PS256');
  other = await generateKeyPair('ES256');
});

/** A resolver that records calls: header checks must refuse before any key lookup. */
function resolver(map: () => Record<string, CryptoKey>): KeyResolver & { calls: number } {
  const r = {
    calls: 0,
    async resolve(header: JWSHeaderParameters): Promise<CryptoKey> {
      r.calls++;
      const key = map()[`${header.kid}:${header.alg}`];
      if (!key) throw new JwtPolicyError('kid_unknown');
      return key;
    },
  };
  return r;
}

const keys = () => resolver(() => ({ 'es:ES256': es.publicKey, 'ps:PS256': ps.publicKey }));

function policy(extra: Partial<JwtPolicy> = {}): JwtPolicy {
  return { algorithms: ['ES256', 'PS256'], issuer: ISS, audience: AUD, clock, ...extra };
}

function claims(extra: Record<string, unknown> = {}): JWTPayload {
  return { iss: ISS, aud: AUD, iat: NOW, exp: NOW + 60, sub: 'alice', ...extra };
}

async function sign(
  payload: JWTPayload,
  header: Record<string, unknown> = {},
  key: CryptoKey = es.privateKey,
): Promise<string> {
  const h = { alg: 'ES256', kid: 'es', ...header } as JWSHeaderParameters & { alg: string };
  return new SignJWT(payload).setProtectedHeader(h).sign(key);
}

/** JWS with headers SignJWT will not produce (alg none, no alg, crit, odd kid). */
async function signRaw(header: Record<string, unknown>, payload: string, key?: CryptoKey): Promise<string> {
  if (!key) return `${base64url.encode(JSON.stringify(header))}.${base64url.encode(payload)}.`;
  const crit = (header.crit as string[] | undefined) ?? [];
  return new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader(header as JWSHeaderParameters & { alg: string })
    .sign(key, { crit: Object.fromEntries(crit.map((c) => [c, true])) });
}

async function refused(token: string, reason: JwtRefusal, p: JwtPolicy = policy(), r = keys()) {
  await assert.rejects(verifyJws(token, r, p), (err: unknown) => {
    assert.ok(err instanceof JwtPolicyError, `expected JwtPolicyError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    return true;
  });
  return r;
}

describe('verifyJws: happy paths', () => {
  it('accepts ES256 and PS256 tokens and returns payload and header', async () => {
    const r = keys();
    const a = await verifyJws(await sign(claims()), r, policy());
    assert.equal(a.payload.sub, 'alice');
    assert.equal(a.header.kid, 'es');
    const b = await verifyJws(await sign(claims(), { alg: 'PS256', kid: 'ps' }, ps.privateKey), r, policy());
    assert.equal(b.header.alg, 'PS256');
    assert.equal(r.calls, 2);
  });

  it('accepts an array aud that contains the audience', async () => {
    await verifyJws(await sign(claims({ aud: ['other', AUD] })), keys(), policy());
  });

  it('accepts typ in any case, with or without application/, when allowed', async () => {
    const p = policy({ typ: { allowed: ['logout+jwt'], required: true } });
    for (const typ of ['logout+jwt', 'Logout+JWT', 'application/logout+jwt', 'APPLICATION/LOGOUT+JWT']) {
      await verifyJws(await sign(claims(), { typ }), keys(), p);
    }
  });

  it('accepts a missing typ when not required', async () => {
    await verifyJws(await sign(claims()), keys(), policy({ typ: { allowed: ['JWT'], required: false } }));
  });

  it('tolerates exp and iat within the clock tolerance', async () => {
    await verifyJws(await sign(claims({ exp: NOW - 29, iat: NOW - 50 })), keys(), policy());
    await verifyJws(await sign(claims({ iat: NOW + 29 })), keys(), policy());
  });
});

describe('verifyJws: header rules (RFC 8725 §3.1, §3.10) refuse before any key lookup', () => {
  it('refuses alg none in any spelling', async () => {
    for (const alg of ['none', 'None', 'NONE']) {
      const r = await refused(await signRaw({ alg, kid: 'es' }, JSON.stringify(claims())), 'alg_none');
      assert.equal(r.calls, 0);
    }
  });

  it('refuses HS256 and RS256 even when listed', async () => {
    const p = policy({ algorithms: ['ES256', 'HS256', 'RS256'] });
    const hs = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'HS256', kid: 'es' })
      .sign(new Uint8Array(32).fill(7));
    assert.equal((await refused(hs, 'alg', p)).calls, 0);
    const rsa = await generateKeyPair('RS256');
    const rs = await sign(claims(), { alg: 'RS256', kid: 'es' }, rsa.privateKey);
    assert.equal((await refused(rs, 'alg', p)).calls, 0);
  });

  it('refuses an alg outside the allowlist', async () => {
    const token = await sign(claims(), { alg: 'PS256', kid: 'ps' }, ps.privateKey);
    assert.equal((await refused(token, 'alg', policy({ algorithms: ['ES256'] }))).calls, 0);
  });

  it('refuses a missing alg', async () => {
    await refused(await signRaw({ kid: 'es' }, JSON.stringify(claims())), 'alg');
  });

  for (const [name, value] of [
    ['jku', 'https://attacker.example/jwks'],
    ['x5u', 'https://attacker.example/cert.pem'],
    ['x5c', ['MIIB']],
    ['jwk', { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }],
  ] as const) {
    it(`refuses a ${name} header (untrusted_key_reference)`, async () => {
      const r = await refused(await sign(claims(), { [name]: value }), 'untrusted_key_reference');
      assert.equal(r.calls, 0);
    });
  }

  it('refuses any crit, including b64 which jose alone would accept', async () => {
    const token = await signRaw(
      { alg: 'ES256', kid: 'es', crit: ['b64'], b64: true },
      JSON.stringify(claims()),
      es.privateKey,
    );
    // Control: jose on its own accepts this token, so the refusal below is ours.
    await jwtVerify(token, es.publicKey, { currentDate: new Date(clock()) });
    assert.equal((await refused(token, 'crit')).calls, 0);
    const custom = await signRaw(
      { alg: 'ES256', kid: 'es', crit: ['urn:x'], 'urn:x': 1 },
      JSON.stringify(claims()),
      es.privateKey,
    );
    await refused(custom, 'crit');
  });

  it('refuses a missing, empty or non-string kid', async () => {
    await refused(
      await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256' }).sign(es.privateKey),
      'kid_missing',
    );
    await refused(await sign(claims(), { kid: '' }), 'kid_missing');
    await refused(
      await signRaw({ alg: 'ES256', kid: 7 }, JSON.stringify(claims()), es.privateKey),
      'kid_missing',
    );
  });

  it('refuses a wrong typ, and a missing one when required', async () => {
    const p = policy({ typ: { allowed: ['oauth-authz-resp+jwt', 'JWT'], required: false } });
    for (const typ of ['logout+jwt', 'at+jwt', 'dpop+jwt', 'application/jwt+x']) {
      await refused(await sign(claims(), { typ }), 'typ', p);
    }
    await refused(await sign(claims()), 'typ', policy({ typ: { allowed: ['logout+jwt'], required: true } }));
  });

  it('refuses malformed tokens', async () => {
    const good = await sign(claims());
    for (const token of [
      '',
      'a.b',
      `${good}.x`,
      'not-base64!.e30.AA',
      `${base64url.encode('[1]')}.e30.AA`,
      'x'.repeat(70_000),
    ]) {
      await refused(token, 'malformed');
    }
  });
});

describe('verifyJws: size bound', () => {
  it('refuses a well-formed, validly signed token over 64 KiB', async () => {
    await verifyJws(await sign(claims({ pad: 'x'.repeat(40_000) })), keys(), policy());
    await refused(await sign(claims({ pad: 'x'.repeat(50_000) })), 'malformed');
  });
});

describe('verifyJws: signature and key', () => {
  it('refuses a tampered payload', async () => {
    const [h, , s] = (await sign(claims())).split('.');
    const forged = `${h}.${base64url.encode(JSON.stringify(claims({ sub: 'mallory' })))}.${s}`;
    await refused(forged, 'signature');
  });

  it('refuses a signature by a key other than the resolved one', async () => {
    await refused(await sign(claims(), {}, other.privateKey), 'signature');
  });

  it('refuses when the resolved key does not fit the alg', async () => {
    const wrong = resolver(() => ({ 'es:ES256': ps.publicKey }));
    await refused(await sign(claims()), 'key_invalid', policy(), wrong);
  });

  it('passes resolver errors (IdP outage) through unchanged', async () => {
    const down: KeyResolver = {
      resolve: async () => {
        throw new BffError('BFF_IDP_UNAVAILABLE', { reason: 'jwks_unreachable' });
      },
    };
    await assert.rejects(verifyJws(await sign(claims()), down, policy()), (err: unknown) => {
      assert.ok(err instanceof BffError && err.code === 'BFF_IDP_UNAVAILABLE');
      return true;
    });
  });

  it('refuses a payload that is not a JSON object', async () => {
    const token = await new CompactSign(new TextEncoder().encode('not json'))
      .setProtectedHeader({ alg: 'ES256', kid: 'es' })
      .sign(es.privateKey);
    await refused(token, 'malformed');
  });
});

describe('verifyJws: claims', () => {
  it('refuses a wrong or missing iss', async () => {
    await refused(await sign(claims({ iss: 'https://evil.example' })), 'iss');
    await refused(await sign(claims({ iss: undefined })), 'iss');
  });

  it('refuses a wrong, missing or non-containing aud', async () => {
    await refused(await sign(claims({ aud: 'someone-else' })), 'aud');
    await refused(await sign(claims({ aud: undefined })), 'aud');
    await refused(await sign(claims({ aud: ['a', 'b'] })), 'aud');
    await refused(await sign(claims({ aud: `${AUD} ` })), 'aud');
  });

  it('refuses a missing exp', async () => {
    await refused(await sign(claims({ exp: undefined })), 'exp_missing');
  });

  it('refuses an exp past the tolerance', async () => {
    await refused(await sign(claims({ exp: NOW - 31, iat: NOW - 60 })), 'expired');
    await refused(
      await sign(claims({ exp: NOW - 6, iat: NOW - 60 })),
      'expired',
      policy({ clockToleranceSec: 5 }),
    );
  });

  it('refuses an nbf in the future', async () => {
    await refused(await sign(claims({ nbf: NOW + 31 })), 'nbf');
  });

  it('refuses an iat in the future beyond the tolerance (or maxIatFutureSec)', async () => {
    await refused(await sign(claims({ iat: NOW + 31 })), 'iat_future');
    await refused(
      await sign(claims({ iat: NOW + 11, exp: NOW + 60 })),
      'iat_future',
      policy({ maxIatFutureSec: 10 }),
    );
  });

  it('refuses an iat older than maxIatAgeSec, and a missing iat only when required', async () => {
    const p = policy({ maxIatAgeSec: 120 });
    await verifyJws(await sign(claims({ iat: NOW - 120 })), keys(), p);
    await refused(await sign(claims({ iat: NOW - 121 })), 'iat_too_old', p);
    await verifyJws(await sign(claims({ iat: undefined })), keys(), p);
    const required = policy({ maxIatAgeSec: 120, requiredClaims: ['iat'] });
    await refused(await sign(claims({ iat: undefined })), 'claim_missing', required);
  });

  it('refuses a lifetime longer than maxLifetimeSec (from iat, or from now without iat)', async () => {
    const p = policy({ maxLifetimeSec: 600 });
    await verifyJws(await sign(claims({ exp: NOW + 600 })), keys(), p);
    await refused(await sign(claims({ exp: NOW + 601 })), 'lifetime', p);
    await refused(await sign(claims({ iat: undefined, exp: NOW + 601 })), 'lifetime', p);
  });

  it('refuses a missing required claim', async () => {
    await refused(
      await sign(claims({ sub: undefined })),
      'claim_missing',
      policy({ requiredClaims: ['sub'] }),
    );
  });

  it('refuses non-numeric time claims as malformed', async () => {
    await refused(await sign(claims({ iat: 'yesterday' })), 'malformed');
  });
});

describe('verifyJws: policy misuse is a programming error', () => {
  it('throws TypeError for an empty allowlist, issuer or audience', async () => {
    const token = await sign(claims());
    await assert.rejects(verifyJws(token, keys(), policy({ algorithms: [] })), TypeError);
    await assert.rejects(verifyJws(token, keys(), policy({ issuer: '' })), TypeError);
    await assert.rejects(verifyJws(token, keys(), policy({ audience: '' })), TypeError);
    await assert.rejects(verifyJws(token, keys(), policy({ clockToleranceSec: -1 })), TypeError);
  });
});
