import { createHash, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import type { KeyValueStore } from '../store/store.js';

export type DpopAlg = 'ES256' | 'PS256';

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

/** An imported DPoP key: a WebCrypto key pair (what openid-client's DPoP handle needs) and proofs. */
export class DpopKey {
  private constructor(
    readonly alg: DpopAlg,
    readonly jkt: string,
    readonly keyPair: CryptoKeyPair,
    private readonly publicJwk: JWK,
  ) {}

  static async import(stored: StoredDpopKey): Promise<DpopKey> {
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = stored.jwk;
    const privateKey = (await importJWK({ ...stored.jwk, alg: stored.alg }, stored.alg)) as CryptoKey;
    const publicKey = (await importJWK({ ...pub, alg: stored.alg }, stored.alg, {
      extractable: true,
    })) as CryptoKey;
    const publicJwk: JWK = { ...pub };
    delete publicJwk.alg;
    delete publicJwk.key_ops;
    delete publicJwk.ext;
    return new DpopKey(stored.alg, stored.jkt, { privateKey, publicKey }, publicJwk);
  }

  /**
   * A fresh proof for one request (RFC 9449 §4.2): `htu` without query and fragment, a new `jti`
   * every time (retries included, §11.1), `ath` only for resource requests (§7).
   */
  async proof(p: {
    htm: string;
    htu: URL;
    nonce?: string | undefined;
    accessToken?: string;
  }): Promise<string> {
    const payload: Record<string, unknown> = {
      jti: randomBytes(16).toString('base64url'),
      htm: p.htm,
      htu: `${p.htu.origin}${p.htu.pathname}`,
    };
    if (p.nonce) payload.nonce = p.nonce;
    if (p.accessToken) payload.ath = createHash('sha256').update(p.accessToken).digest('base64url');
    return new SignJWT(payload)
      .setProtectedHeader({ alg: this.alg, typ: 'dpop+jwt', jwk: this.publicJwk })
      .setIssuedAt()
      .sign(this.keyPair.privateKey);
  }
}

/** Bounded cache of imported keys: importing costs more than signing, and sessions repeat. */
export class DpopKeyCache {
  private readonly keys = new Map<string, Promise<DpopKey>>();
  constructor(private readonly max = 10_000) {}

  get(stored: StoredDpopKey): Promise<DpopKey> {
    let key = this.keys.get(stored.jkt);
    if (!key) {
      if (this.keys.size >= this.max) this.keys.delete(this.keys.keys().next().value as string);
      key = DpopKey.import(stored);
      key.catch(() => this.keys.delete(stored.jkt));
      this.keys.set(stored.jkt, key);
    }
    return key;
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
