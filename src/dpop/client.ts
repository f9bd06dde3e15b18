import {
  constants,
  createHash,
  createPrivateKey,
  type JsonWebKey as NodeJwk,
  type KeyObject,
  sign,
} from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { randomBase64url } from '../random.js';
import type { KeyValueStore } from '../store/store.js';

/**
 * FAPI 2.0 §5.4.1 algs; EdDSA is Ed25519 (refused in FIPS mode). Our API proofs say `EdDSA` (the
 * FAPI name); openid-client's token-endpoint proofs for the same key say `Ed25519` (RFC 9864's
 * fully-specified name), so an AS must allow both.
 */
export type DpopAlg = 'ES256' | 'PS256' | 'EdDSA';

/** A session's DPoP key as stored (sealed with the session, never in a cookie or `state`). */
export interface StoredDpopKey {
  alg: DpopAlg;
  /** Private JWK: lives only inside the encrypted session record. */
  jwk: JWK;
  /** RFC 7638 thumbprint of the public key (`dpop_jkt`, `cnf.jkt`). */
  jkt: string;
}

/**
 * One key pair per session (https://www.rfc-editor.org/rfc/rfc9449#section-11.4): a stolen access token is useless
 * without it, and one session's key never proves for another's.
 */
export async function generateDpopKey(alg: DpopAlg): Promise<StoredDpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const jkt = await calculateJwkThumbprint(await exportJWK(publicKey), 'sha256');
  return { alg, jwk: { ...jwk, alg }, jkt };
}

/**
 * An imported DPoP key: a WebCrypto key pair (what openid-client's DPoP handle needs for the token
 * endpoint) and a node:crypto KeyObject for the per-request proofs to upstream APIs.
 */
export class DpopKey {
  private constructor(
    readonly alg: DpopAlg,
    readonly jkt: string,
    readonly keyPair: CryptoKeyPair,
    private readonly signingKey: KeyObject,
    /** base64url of the protected header, identical for every proof of this key. */
    private readonly header: string,
  ) {}

  static async import(stored: StoredDpopKey): Promise<DpopKey> {
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = stored.jwk;
    const privateKey = (await importJWK({ ...stored.jwk, alg: stored.alg }, stored.alg)) as CryptoKey;
    const publicKey = (await importJWK({ ...pub, alg: stored.alg }, stored.alg, {
      extractable: true,
    })) as CryptoKey;
    // RFC 9449 §4.2: the header's jwk is the bare public key (no alg, key_ops, ext, private parts).
    const publicJwk: JWK = { ...pub };
    delete publicJwk.alg;
    delete publicJwk.key_ops;
    delete publicJwk.ext;
    const signingKey = createPrivateKey({ key: stored.jwk as NodeJwk, format: 'jwk' });
    const header = b64(JSON.stringify({ alg: stored.alg, typ: 'dpop+jwt', jwk: publicJwk }));
    return new DpopKey(stored.alg, stored.jkt, { privateKey, publicKey }, signingKey, header);
  }

  /**
   * A fresh proof for one request (RFC 9449 §4.2): `htu` without query and fragment, a new `jti`
   * every time (retries included, §11.1), `ath` only for resource requests (§7).
   *
   * Signed with node:crypto on a KeyObject and serialised as the three base64url segments of a JWS
   * compact serialization (RFC 7515 §7.1): about 3× cheaper than jose's WebCrypto path per proof,
   * which matters because every API call needs a fresh one. The signature is OpenSSL's; ES256 uses
   * the IEEE P1363 (r‖s) encoding JWS requires (RFC 7518 §3.4), PS256 PSS with a 32-byte salt
   * (RFC 7518 §3.5), EdDSA pure Ed25519 (RFC 8037 §3.1). Tests verify every kind with jose.
   */
  async proof(p: {
    htm: string;
    htu: URL;
    nonce?: string | undefined;
    accessToken?: string;
  }): Promise<string> {
    // The claims JSON in a fixed order, written directly: the same document JSON.stringify makes of
    // { jti, htm, htu, iat, nonce?, ath? } (every string through JSON.stringify, so escaping is its).
    let claims =
      `{"jti":"${randomBase64url(16)}","htm":${JSON.stringify(p.htm)},` +
      `"htu":${JSON.stringify(`${p.htu.origin}${p.htu.pathname}`)},"iat":${Math.floor(Date.now() / 1000)}`;
    if (p.nonce) claims += `,"nonce":${JSON.stringify(p.nonce)}`;
    if (p.accessToken) claims += `,"ath":"${this.ath(p.accessToken)}"`;
    const input = `${this.header}.${b64(`${claims}}`)}`;
    return `${input}.${this.sign(Buffer.from(input)).toString('base64url')}`;
  }

  /** RFC 9449 §4.2 `ath`: SHA-256 of the access token, computed once per token (every call of a session repeats it). */
  private ath(accessToken: string): string {
    if (this.lastAth?.token !== accessToken) {
      this.lastAth = {
        token: accessToken,
        ath: createHash('sha256').update(accessToken).digest('base64url'),
      };
    }
    return this.lastAth.ath;
  }
  private lastAth: { token: string; ath: string } | undefined;

  private sign(input: Buffer): Buffer {
    switch (this.alg) {
      case 'ES256':
        return sign('sha256', input, { key: this.signingKey, dsaEncoding: 'ieee-p1363' });
      case 'PS256':
        return sign('sha256', input, {
          key: this.signingKey,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: 32,
        });
      case 'EdDSA':
        return sign(null, input, this.signingKey);
    }
  }
}

function b64(text: string): string {
  return Buffer.from(text).toString('base64url');
}

/** Bounded cache of imported keys: importing costs more than signing, and sessions repeat. */
export class DpopKeyCache {
  private readonly keys = new Map<string, Promise<DpopKey>>();
  /** The same keys once imported, for callers on the hot path that need no promise. */
  private readonly ready = new Map<string, DpopKey>();
  constructor(private readonly max = 10_000) {}

  get(stored: StoredDpopKey): Promise<DpopKey> {
    let key = this.keys.get(stored.jkt);
    if (!key) {
      if (this.keys.size >= this.max) {
        const oldest = this.keys.keys().next().value as string;
        this.keys.delete(oldest);
        this.ready.delete(oldest);
      }
      const pending = DpopKey.import(stored);
      key = pending;
      pending.then(
        (k) => {
          if (this.keys.get(stored.jkt) === pending) this.ready.set(stored.jkt, k);
        },
        () => this.keys.delete(stored.jkt),
      );
      this.keys.set(stored.jkt, key);
    }
    return key;
  }

  /** The imported key of `stored` if `get` has finished importing it (and it is still cached), else undefined. */
  imported(stored: StoredDpopKey): DpopKey | undefined {
    return this.ready.get(stored.jkt);
  }
}

/**
 * Server-provided DPoP nonces (RFC 9449 §8, §9), per origin, shared through the store so another
 * instance does not pay an extra round trip to learn the current one. A short local memo keeps the
 * store out of the hot path; a stale nonce costs one retry, never a failure.
 */
export class DpopNonceCache {
  /** Also remembers "no nonce" (undefined): an upstream that never sends one costs no store read per request. */
  private readonly memo = new Map<string, { nonce: string | undefined; at: number }>();

  constructor(
    private readonly store: KeyValueStore,
    private readonly ttlMs = 5 * 60_000,
    private readonly memoMs = 1_000,
  ) {}

  async get(origin: string): Promise<string | undefined> {
    const m = this.memo.get(origin);
    if (m && Date.now() - m.at < this.memoMs) return m.nonce;
    const nonce = await this.store.get(key(origin)).catch(() => undefined);
    this.memo.set(origin, { nonce, at: Date.now() });
    return nonce;
  }

  async set(origin: string, nonce: string): Promise<void> {
    if (nonce.length > 512) return;
    const m = this.memo.get(origin);
    if (m?.nonce === nonce) return;
    this.memo.set(origin, { nonce, at: Date.now() });
    await this.store.set(key(origin), nonce, this.ttlMs).catch(() => undefined);
  }
}

function key(origin: string): string {
  return `dpopnonce:${createHash('sha256').update(origin).digest('base64url')}`;
}
