import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  base64url,
  CompactEncrypt,
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTPayload,
  SignJWT,
  UnsecuredJWT,
} from 'jose';
import { BffError } from '../../src/errors.js';
import type { IdpFetch } from '../../src/oauth/http.js';
import {
  type JarmEncAlg,
  type JarmEncEnc,
  JarmError,
  type JarmEvents,
  type JarmMode,
  type JarmOptions,
  type JarmRefusal,
  peekJarmState,
  verifyJarm,
} from '../../src/oauth/jarm.js';
import { JwksCache } from '../../src/oauth/jwks-cache.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const ISS = 'https://idp.example';
const CLIENT = 'bff-client';
const STATE = 'state-abc';
const START = 1_800_000_000; // seconds

/** Seconds; tests move it. Shared by the JWKS cache, the replay store and the verifier. */
let t = START;
const clock = () => t * 1000;

// --- a loopback JWKS endpoint (the real IdP) and an attacker's, both counting requests --------

interface KeyServer {
  url: string;
  hits: number;
  jwks: { keys: JWK[] };
  close(): Promise<void>;
}

async function keyServer(): Promise<KeyServer> {
  const state = { hits: 0, jwks: { keys: [] as JWK[] } };
  const server: Server = createServer((_req, res) => {
    state.hits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(state.jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/jwks`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

const loopbackFetch: IdpFetch = (url, init) => fetch(url, init as RequestInit);

interface Signer {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signer(alg: 'ES256' | 'PS256' | 'RS256', kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

let idp: KeyServer;
let attacker: KeyServer;
let es: Signer;
let ps: Signer;
let rs: Signer;
let evil: Signer;
let rsaEnc: { publicKey: CryptoKey; privateKey: CryptoKey };
let ecEnc: { publicKey: CryptoKey; privateKey: CryptoKey };
let otherRsaEnc: { publicKey: CryptoKey; privateKey: CryptoKey };

before(async () => {
  [idp, attacker] = await Promise.all([keyServer(), keyServer()]);
  es = await signer('ES256', 'idp-es');
  ps = await signer('PS256', 'idp-ps');
  rs = await signer('RS256', 'idp-rs');
  evil = await signer('ES256', 'idp-es'); // the attacker reuses the IdP's kid
  attacker.jwks = { keys: [evil.jwk] };
  rsaEnc = await generateKeyPair('RSA-OAEP-256', { extractable: true });
  ecEnc = await generateKeyPair('ECDH-ES', { extractable: true });
  otherRsaEnc = await generateKeyPair('RSA-OAEP-256', { extractable: true });
});
after(async () => {
  await idp.close();
  await attacker.close();
});
beforeEach(() => {
  t = START;
  idp.hits = 0;
  attacker.hits = 0;
  idp.jwks = { keys: [es.jwk, ps.jwk, rs.jwk] };
});

// --- building responses as a (hostile) IdP would --------------------------------------------

function claims(extra: Record<string, unknown> = {}): JWTPayload {
  return { iss: ISS, aud: CLIENT, iat: t, exp: t + 60, state: STATE, code: 'code-123', ...extra };
}

function jarm(
  extra: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
  by: Signer = es,
): Promise<string> {
  return new SignJWT(claims(extra))
    .setProtectedHeader({ alg: by.alg, kid: by.kid, ...header } as { alg: string })
    .sign(by.privateKey);
}

function encrypt(
  plaintext: string,
  key: CryptoKey,
  alg: string = 'RSA-OAEP-256',
  enc: string = 'A256GCM',
  header: Record<string, unknown> = {},
  crit?: Record<string, boolean>,
): Promise<string> {
  return new CompactEncrypt(new TextEncoder().encode(plaintext))
    .setProtectedHeader({ alg, enc, cty: 'JWT', ...header })
    .encrypt(key, crit ? { crit } : undefined);
}

// --- the verifier's environment ---------------------------------------------------------------

interface Recorder extends JarmEvents {
  calls: string[];
}

function recorder(): Recorder {
  const calls: string[] = [];
  return {
    calls,
    verified: (mode) => calls.push(`verified:${mode}`),
    decryptionFailed: (alg) => calls.push(`decryptionFailed:${alg}`),
    validationFailed: (reason) => calls.push(`validationFailed:${reason}`),
    replayDenied: () => calls.push('replayDenied'),
    typInvalid: () => calls.push('typInvalid'),
    audMismatch: () => calls.push('audMismatch'),
  };
}

interface Env {
  opts: JarmOptions;
  events: Recorder;
  keys: JwksCache;
}

function env(extra: Partial<JarmOptions> = {}): Env {
  const events = recorder();
  const keys = new JwksCache({ jwksUri: idp.url, fetch: loopbackFetch, clock, timeoutMs: 2_000 });
  const opts: JarmOptions = {
    issuer: ISS,
    clientId: CLIENT,
    mode: 'query.jwt',
    algorithms: ['PS256', 'ES256'],
    keys,
    replay: new MemoryStore({ clock, sweepIntervalMs: 0 }),
    events,
    clock,
    ...extra,
  };
  return { opts, events, keys };
}

type Ctx = { outerIss: string | null; expectedState?: string };
const ctx: Ctx = { outerIss: null, expectedState: STATE };

/** Asserts a refusal with this reason, and exactly these events (validationFailed always). */
async function refused(
  response: string | Promise<string>,
  reason: JarmRefusal,
  e: Env = env(),
  extraEvents: string[] = [],
  c: Ctx = ctx,
): Promise<void> {
  await assert.rejects(verifyJarm(await response, c, e.opts), (err: unknown) => {
    assert.ok(err instanceof JarmError, `expected JarmError, got ${String(err)}`);
    assert.ok(err instanceof BffError);
    assert.equal(err.code, 'BFF_CALLBACK_INVALID');
    assert.equal(err.statusCode, 400);
    assert.equal(err.reason, reason);
    return true;
  });
  assert.deepEqual(e.events.calls.sort(), [...extraEvents, `validationFailed:${reason}`].sort());
}

async function accepted(response: string, e: Env = env(), c: Ctx = ctx): Promise<URLSearchParams> {
  const params = await verifyJarm(response, c, e.opts);
  assert.deepEqual(e.events.calls, [`verified:${e.opts.mode}`]);
  return params;
}

// --- happy paths --------------------------------------------------------------------------------

describe('verifyJarm: valid responses', () => {
  it('accepts ES256 and PS256 and returns the response parameters only', async () => {
    for (const by of [es, ps]) {
      const params = await accepted(await jarm({}, {}, by));
      assert.deepEqual(Object.fromEntries(params), { iss: ISS, state: STATE, code: 'code-123' });
    }
  });

  it('accepts typ oauth-authz-resp+jwt, JWT (any case, application/ prefix) or none', async () => {
    for (const typ of ['oauth-authz-resp+jwt', 'application/oauth-authz-resp+jwt', 'JWT', 'jwt', undefined]) {
      await accepted(await jarm({}, typ === undefined ? {} : { typ }));
    }
  });

  it('reports the configured mode', async () => {
    for (const mode of ['jwt', 'query.jwt', 'fragment.jwt', 'form_post.jwt'] as JarmMode[]) {
      await accepted(await jarm(), env({ mode }));
    }
  });

  it('accepts an outer iss equal to the JWT iss (RFC 9207)', async () => {
    await accepted(await jarm(), env(), { outerIss: ISS, expectedState: STATE });
  });

  it('accepts without expectedState (state still present) and an aud array with the client', async () => {
    const params = await accepted(await jarm({ aud: [CLIENT] }), env(), { outerIss: null });
    assert.equal(params.get('state'), STATE);
  });

  it('tolerates iat skew up to 120 s and exp up to 30 s in the past', async () => {
    await accepted(await jarm({ iat: t + 120, exp: t + 180 }));
    await accepted(await jarm({ iat: t - 120, exp: t - 29 }));
  });

  it('returns an error carried inside a valid JARM as parameters, not as an exception', async () => {
    const params = await accepted(
      await jarm({ code: undefined, error: 'access_denied', error_description: 'The user said no' }),
    );
    assert.equal(params.get('error'), 'access_denied');
    assert.equal(params.get('error_description'), 'The user said no');
    assert.equal(params.get('code'), null);
  });

  for (const alg of ['RSA-OAEP-256', 'ECDH-ES', 'ECDH-ES+A256KW'] as JarmEncAlg[]) {
    for (const enc of ['A256GCM', 'A256CBC-HS512'] as JarmEncEnc[]) {
      it(`accepts an encrypted JARM ${alg} / ${enc}`, async () => {
        const pair = alg === 'RSA-OAEP-256' ? rsaEnc : ecEnc;
        const e = env({ decryption: { key: pair.privateKey, alg, enc } });
        const params = await accepted(await encrypt(await jarm({}, {}, ps), pair.publicKey, alg, enc), e);
        assert.equal(params.get('code'), 'code-123');
      });
    }
  }

  it('accepts a nested JWT without cty (the inner is still verified)', async () => {
    const e = env({ decryption: { key: rsaEnc.privateKey, alg: 'RSA-OAEP-256', enc: 'A256GCM' } });
    const response = await new CompactEncrypt(new TextEncoder().encode(await jarm()))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
      .encrypt(rsaEnc.publicKey);
    await accepted(response, e);
  });
});

// --- header rules (seed 002 §11, RFC 8725) -------------------------------------------------

describe('verifyJarm: JOSE header refusals', () => {
  it('refuses a bad signature', async () => {
    const [h, , s] = (await jarm()).split('.');
    const forged = `${h}.${base64url.encode(JSON.stringify(claims({ code: 'attacker-code' })))}.${s}`;
    await refused(forged, 'signature');
  });

  it('refuses a response signed by a key not in the JWKS under the IdP kid', async () => {
    await refused(jarm({}, {}, evil), 'signature');
  });

  it('refuses alg none', async () => {
    const unsigned = new UnsecuredJWT(claims()).encode();
    await refused(unsigned, 'alg_none');
    const noneHeader = base64url.encode(JSON.stringify({ alg: 'none', kid: 'idp-es' }));
    const withKid = `${noneHeader}.${unsigned.split('.')[1]}.`;
    await refused(withKid, 'alg_none');
  });

  it('refuses RS256 and HS256 even when listed', async () => {
    const e = env({ algorithms: ['ES256', 'RS256', 'HS256'] });
    await refused(jarm({}, {}, rs), 'alg', e);
    const hs = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'HS256', kid: 'idp-es' })
      .sign(new TextEncoder().encode('a shared secret of at least 32 bytes!!'));
    await refused(hs, 'alg', env({ algorithms: ['ES256', 'RS256', 'HS256'] }));
  });

  it('refuses an alg outside the configured allowlist', async () => {
    await refused(jarm({}, {}, ps), 'alg', env({ algorithms: ['ES256'] }));
  });

  it('refuses a missing kid', async () => {
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256' }).sign(es.privateKey);
    await refused(token, 'kid_missing');
  });

  it('refuses an unknown kid after exactly one JWKS refresh, and finds a rolled-over key later', async () => {
    const e = env();
    await accepted(await jarm(), e); // primes the cache: 1 fetch
    assert.equal(idp.hits, 1);
    t += 61; // past the unknown-kid rate limit
    const next = await signer('ES256', 'idp-next');
    e.events.calls.length = 0;
    await refused(jarm({}, {}, next), 'kid_unknown', e);
    assert.equal(idp.hits, 2, 'one refresh for the unknown kid');
    idp.jwks = { keys: [es.jwk, next.jwk] }; // the IdP rolls over
    e.events.calls.length = 0;
    await refused(jarm({}, {}, next), 'kid_unknown', e);
    assert.equal(idp.hits, 2, 'rate-limited: no second refresh within 60 s');
    t += 61;
    e.events.calls.length = 0;
    await accepted(await jarm({}, {}, next), e);
    assert.equal(idp.hits, 3);
  });

  it('refuses a jku header pointing at an attacker key, and never fetches it', async () => {
    const e = env();
    await refused(jarm({}, { jku: attacker.url }, evil), 'untrusted_key_reference', e);
    await refused(jarm({}, { jku: attacker.url, kid: 'attacker' }, evil), 'untrusted_key_reference');
    assert.equal(attacker.hits, 0);
    assert.equal(idp.hits, 0, 'refused before any key lookup');
  });

  it('refuses x5u, x5c and embedded jwk headers', async () => {
    await refused(jarm({}, { x5u: attacker.url }, evil), 'untrusted_key_reference');
    await refused(jarm({}, { x5c: ['MIIBIjANBgkq'] }, evil), 'untrusted_key_reference');
    await refused(jarm({}, { jwk: evil.jwk }, evil), 'untrusted_key_reference');
    assert.equal(attacker.hits, 0);
  });

  it('refuses an unknown crit', async () => {
    const token = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'ES256', kid: 'idp-es', crit: ['urn:example:x'], 'urn:example:x': true })
      .sign(es.privateKey, { crit: { 'urn:example:x': true } });
    await refused(token, 'crit');
  });

  for (const typ of ['logout+jwt', 'at+jwt', 'dpop+jwt', 'oauth-authz-req+jwt']) {
    it(`refuses typ ${typ} and counts it`, async () => {
      await refused(jarm({}, { typ }), 'typ', env(), ['typInvalid']);
    });
  }
});

// --- claims (JARM §2.4, Appendix A) --------------------------------------------------------

describe('verifyJarm: claim refusals', () => {
  it('refuses a wrong or missing iss (without fetching anything for it)', async () => {
    await refused(jarm({ iss: attacker.url }), 'iss');
    await refused(jarm({ iss: undefined }), 'iss');
    assert.equal(attacker.hits, 0);
  });

  it('refuses an outer iss different from the JWT iss (JARM-12)', async () => {
    await refused(jarm(), 'iss_mismatch', env(), [], {
      outerIss: 'https://evil.example',
      expectedState: STATE,
    });
    await refused(jarm(), 'iss_mismatch', env(), [], { outerIss: '', expectedState: STATE });
  });

  it('refuses a wrong or missing aud and counts it', async () => {
    await refused(jarm({ aud: 'another-client' }), 'aud', env(), ['audMismatch']);
    await refused(jarm({ aud: undefined }), 'aud', env(), ['audMismatch']);
    await refused(jarm({ aud: ['another-client', 'third'] }), 'aud', env(), ['audMismatch']);
  });

  it('refuses a missing exp, and an exp past the tolerance', async () => {
    await refused(jarm({ exp: undefined }), 'exp_missing');
    await refused(jarm({ iat: t - 100, exp: t - 31 }), 'expired');
    await refused(jarm({ iat: t - 400, exp: t - 360 }), 'expired'); // the suite's case: 6 min ago
  });

  it('refuses an iat in the future or too old, and bounds a response without iat by its lifetime', async () => {
    await refused(jarm({ iat: t + 121, exp: t + 200 }), 'iat_future');
    await refused(jarm({ iat: t - 121 }), 'iat_too_old');
    // JARM §2.1 does not require iat (oidc-provider omits it): accepted, with exp - now capped.
    await refused(jarm({ iat: undefined, exp: t + 601 }), 'lifetime');
  });

  it('refuses a lifetime above maxLifetimeSec', async () => {
    await refused(jarm({ exp: t + 601 }), 'lifetime');
    await refused(jarm({ exp: t + 61 }), 'lifetime', env({ maxLifetimeSec: 60 }));
  });

  it('refuses an nbf in the future', async () => {
    await refused(jarm({ nbf: t + 31 }), 'nbf');
  });

  it('refuses a wrong state, and a missing one', async () => {
    await refused(jarm({ state: 'someone-elses' }), 'state_mismatch');
    await refused(jarm({ state: undefined }), 'state_missing');
    await refused(jarm({ state: 42 }), 'state_missing');
  });

  it('refuses an error response whose JARM fails a check (no unverified error page)', async () => {
    await refused(jarm({ code: undefined, error: 'access_denied', aud: 'x' }), 'aud', env(), ['audMismatch']);
  });

  it('refuses an ID token or logout token fed as a JARM (RFC 8725 §3.12)', async () => {
    await refused(
      jarm({ sub: 'alice', nonce: 'n', state: undefined, code: undefined }, { typ: 'JWT' }),
      'state_missing',
    );
    await refused(
      jarm({ events: { 'http://schemas.openid.net/event/backchannel-logout': {} } }, { typ: 'logout+jwt' }),
      'typ',
      env(),
      ['typInvalid'],
    );
  });

  it('refuses malformed input', async () => {
    for (const bad of ['', 'abc', 'a.b.c.d', 'x'.repeat(70_000)]) await refused(bad, 'malformed');
    await refused(jarm({ jti: 12 }), 'malformed');
  });
});

// --- replay -----------------------------------------------------------------------------------

/** The other valid ECDSA signature over the same input: (r, n - s). A different string, same claims. */
function malleate(jws: string): string {
  const [h, p, s] = jws.split('.') as [string, string, string];
  const sig = Buffer.from(s, 'base64url');
  const n = BigInt('0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551');
  const sValue = BigInt(`0x${sig.subarray(32).toString('hex')}`);
  const flipped = Buffer.from((n - sValue).toString(16).padStart(64, '0'), 'hex');
  return `${h}.${p}.${Buffer.concat([sig.subarray(0, 32), flipped]).toString('base64url')}`;
}

describe('verifyJarm: replay', () => {
  it('refuses the same response twice', async () => {
    const e = env();
    const response = await jarm();
    await accepted(response, e);
    e.events.calls.length = 0;
    await refused(response, 'replay', e, ['replayDenied']);
  });

  it('refuses the same jti in a different response', async () => {
    const e = env();
    await accepted(await jarm({ jti: 'jti-1', code: 'a' }), e);
    e.events.calls.length = 0;
    await refused(jarm({ jti: 'jti-1', code: 'b' }), 'replay', e, ['replayDenied']);
  });

  it('refuses a re-signed (malleated ECDSA) copy of a used response without jti', async () => {
    const e = env();
    const response = await jarm();
    await accepted(response, e);
    const copy = malleate(response);
    assert.notEqual(copy, response);
    e.events.calls.length = 0;
    await refused(copy, 'replay', e, ['replayDenied']);
  });

  it('a refused response does not burn its replay entry', async () => {
    const e = env();
    const response = await jarm();
    await refused(response, 'state_mismatch', e, [], { outerIss: null, expectedState: 'other' });
    e.events.calls.length = 0;
    await accepted(response, e);
  });

  it('stores the entry until exp plus tolerance', async () => {
    const e = env();
    const response = await jarm({ jti: 'j-ttl', exp: t + 60 });
    await accepted(response, e);
    t += 89;
    assert.equal(await e.opts.replay.get('jarm:j-ttl'), '1');
    t += 2;
    assert.equal(await e.opts.replay.get('jarm:j-ttl'), undefined);
  });
});

// --- encryption (JARM §2.2/2.4, Milestone 3) --------------------------------------------

describe('verifyJarm: encryption refusals', () => {
  const rsaEnv = (extra: Partial<JarmOptions> = {}) =>
    env({ decryption: { key: rsaEnc.privateKey, alg: 'RSA-OAEP-256', enc: 'A256GCM' }, ...extra });

  it('refuses a plain JWS when encryption is configured', async () => {
    await refused(jarm(), 'encryption_required', rsaEnv());
  });

  it('refuses a JWE when no decryption is configured', async () => {
    await refused(encrypt(await jarm(), rsaEnc.publicKey), 'jwe_unexpected');
  });

  it('refuses a JWE encrypted to another key', async () => {
    await refused(encrypt(await jarm(), otherRsaEnc.publicKey), 'decryption', rsaEnv(), [
      'decryptionFailed:RSA-OAEP-256',
    ]);
  });

  it('refuses a JWE with another alg (RSA-OAEP with SHA-1) for the same key', async () => {
    const jwk = await exportJWK(rsaEnc.publicKey);
    const sha1 = (await importJWK({ ...jwk, alg: 'RSA-OAEP' }, 'RSA-OAEP')) as CryptoKey;
    await refused(encrypt(await jarm(), sha1, 'RSA-OAEP'), 'jwe_alg', rsaEnv(), [
      'decryptionFailed:RSA-OAEP',
    ]);
  });

  it('refuses a JWE with another enc', async () => {
    for (const enc of ['A128GCM', 'A256CBC-HS512']) {
      await refused(encrypt(await jarm(), rsaEnc.publicKey, 'RSA-OAEP-256', enc), 'jwe_enc', rsaEnv(), [
        'decryptionFailed:RSA-OAEP-256',
      ]);
    }
  });

  it('labels an unknown JWE alg as unknown (bounded metric label)', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'x'.repeat(40), enc: 'A256GCM' }));
    await refused(`${header}.a.b.c.d`, 'jwe_alg', rsaEnv(), ['decryptionFailed:unknown']);
  });

  it('refuses a JWE wrapping an unsigned payload', async () => {
    await refused(encrypt(JSON.stringify(claims()), rsaEnc.publicKey), 'nested_not_signed', rsaEnv());
    await refused(encrypt(new UnsecuredJWT(claims()).encode(), rsaEnc.publicKey), 'alg_none', rsaEnv());
  });

  it('refuses a JWE whose cty is not JWT', async () => {
    await refused(
      encrypt(await jarm(), rsaEnc.publicKey, 'RSA-OAEP-256', 'A256GCM', { cty: 'json' }),
      'jwe_cty',
      rsaEnv(),
    );
  });

  it('refuses a JWE with crit', async () => {
    const response = encrypt(
      await jarm(),
      rsaEnc.publicKey,
      'RSA-OAEP-256',
      'A256GCM',
      { crit: ['x'], x: 1 },
      {
        x: true,
      },
    );
    await refused(response, 'crit', rsaEnv(), ['decryptionFailed:RSA-OAEP-256']);
  });

  it('verifies the inner JWS of a correctly encrypted response (bad inner signature refused)', async () => {
    await refused(encrypt(await jarm({}, {}, evil), rsaEnc.publicKey), 'signature', rsaEnv());
    await refused(encrypt(await jarm({ aud: 'x' }), rsaEnc.publicKey), 'aud', rsaEnv(), ['audMismatch']);
  });

  it('refuses a weak decryption configuration at call time', async () => {
    const weak = env({
      decryption: { key: rsaEnc.privateKey, alg: 'RSA1_5' as JarmEncAlg, enc: 'A256GCM' },
    });
    await assert.rejects(verifyJarm(await jarm(), ctx, weak.opts), TypeError);
    await assert.rejects(verifyJarm(await jarm(), ctx, env({ iatSkewSec: 121 }).opts), RangeError);
    await assert.rejects(verifyJarm(await jarm(), ctx, env({ expToleranceSec: 31 }).opts), RangeError);
  });
});

// --- availability --------------------------------------------------------------------------

describe('verifyJarm: JWKS outage', () => {
  it('surfaces an unreachable JWKS as BFF_IDP_UNAVAILABLE, not as a validation failure', async () => {
    const down = await keyServer();
    const url = down.url;
    await down.close();
    const e = env({ keys: new JwksCache({ jwksUri: url, fetch: loopbackFetch, clock, timeoutMs: 1_000 }) });
    await assert.rejects(verifyJarm(await jarm(), ctx, e.opts), (err: unknown) => {
      assert.ok(err instanceof BffError && !(err instanceof JarmError));
      assert.equal(err.code, 'BFF_IDP_UNAVAILABLE');
      return true;
    });
    assert.deepEqual(e.events.calls, []);
  });
});

// --- peekJarmState ----------------------------------------------------------------------------

describe('peekJarmState', () => {
  const dec = () => ({ key: rsaEnc.privateKey, alg: 'RSA-OAEP-256', enc: 'A256GCM' }) as const;

  it('returns the (unverified) state of a JWS, even one with a bad signature', async () => {
    assert.equal(await peekJarmState(await jarm(), {}), STATE);
    assert.equal(await peekJarmState(await jarm({}, {}, evil), {}), STATE);
  });

  it('decrypts a JWE when decryption is configured', async () => {
    const d = dec();
    assert.equal(
      await peekJarmState(await encrypt(await jarm(), rsaEnc.publicKey), { decryption: d }),
      STATE,
    );
  });

  it('returns undefined for anything malformed or undecryptable', async () => {
    const d = dec();
    for (const bad of ['', 'a.b', 'x.y.z', 'a.b.c.d.e', 'x'.repeat(70_000)]) {
      assert.equal(await peekJarmState(bad, { decryption: d }), undefined);
    }
    assert.equal(await peekJarmState(await jarm({ state: 7 }), {}), undefined);
    const jwe = await encrypt(await jarm(), rsaEnc.publicKey);
    assert.equal(await peekJarmState(jwe, {}), undefined, 'JWE without decryption');
    assert.equal(
      await peekJarmState(await encrypt(await jarm(), otherRsaEnc.publicKey), { decryption: d }),
      undefined,
    );
    assert.equal(
      await peekJarmState(await encrypt(JSON.stringify(claims()), rsaEnc.publicKey), { decryption: d }),
      undefined,
    );
  });
});
