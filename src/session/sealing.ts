import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

/**
 * Authenticated encryption of session records at rest (AES-256-GCM, NIST SP 800-38D) and MACs for
 * cookie values (HMAC-SHA-256, RFC 2104), with key rotation: the first key seals and MACs, every
 * key opens and verifies.
 *
 * Each configured key is a master key. Two subkeys are derived from it with HKDF-SHA-256
 * (RFC 5869), one for encryption and one for MACs, so the same key material is never used by two
 * algorithms. The key id is the first 8 characters of base64url(SHA-256(master key)): it names the
 * key without revealing it and lets `open` pick the key without trial decryption.
 *
 * Sealed format: `v1.<keyId>.<iv>.<ciphertext>.<tag>`, base64url without padding. The version and
 * key id are bound into the GCM additional data together with the caller's `aad`, so no part can
 * be altered or moved to another record without failing authentication.
 */

const VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12; // the GCM nonce size that needs no GHASH derivation (SP 800-38D §8.2)
const TAG_BYTES = 16;
const MAC_BYTES = 32;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

interface SealingKey {
  id: string;
  enc: Buffer;
  mac: Buffer;
}

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/**
 * Strict base64url decoding. Buffer.from(…, 'base64url') skips invalid characters and ignores
 * trailing bits, so a tampered string could decode to the original bytes; requiring the canonical
 * encoding makes every change to the text a change to the bytes.
 */
function fromB64u(text: string): Buffer | undefined {
  if (!BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}

function deriveKey(master: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, new Uint8Array(0), `fapi-bff ${info}`, KEY_BYTES));
}

export class SessionSealer {
  readonly #keys: readonly SealingKey[];
  readonly #byId: ReadonlyMap<string, SealingKey>;

  constructor(keys: readonly Uint8Array[]) {
    if (!Array.isArray(keys) || keys.length === 0) throw new Error('SessionSealer needs at least one key');
    const prepared: SealingKey[] = [];
    const byId = new Map<string, SealingKey>();
    keys.forEach((key, i) => {
      if (!(key instanceof Uint8Array) || key.byteLength !== KEY_BYTES) {
        throw new Error(`SessionSealer key #${i + 1} must be exactly ${KEY_BYTES} bytes`);
      }
      const id = createHash('sha256').update(key).digest('base64url').slice(0, 8);
      const sealingKey: SealingKey = { id, enc: deriveKey(key, 'seal v1'), mac: deriveKey(key, 'mac v1') };
      prepared.push(sealingKey);
      // The same key listed twice is harmless; the first occurrence wins.
      if (!byId.has(id)) byId.set(id, sealingKey);
    });
    this.#keys = prepared;
    this.#byId = byId;
  }

  /** The id of the active (sealing) key, for logs and metrics. */
  get activeKeyId(): string {
    return this.#keys[0]!.id;
  }

  seal(plaintext: string, aad: string): string {
    const key = this.#keys[0]!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.enc, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(`${VERSION}.${key.id}.${aad}`, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return `${VERSION}.${key.id}.${b64u(iv)}.${b64u(ciphertext)}.${b64u(tag)}`;
  }

  /** The plaintext, or undefined for anything that is not a record sealed under a known key with this aad. */
  open(sealed: string, aad: string): string | undefined {
    if (typeof sealed !== 'string') return undefined;
    const parts = sealed.split('.');
    if (parts.length !== 5) return undefined;
    const [version, keyId, ivText, ciphertextText, tagText] = parts as [
      string,
      string,
      string,
      string,
      string,
    ];
    if (version !== VERSION) return undefined;
    const key = this.#byId.get(keyId);
    if (key === undefined) return undefined;
    const iv = fromB64u(ivText);
    const ciphertext = fromB64u(ciphertextText);
    const tag = fromB64u(tagText);
    // A short tag would weaken authentication (GCM accepts truncated tags), so only the full length passes.
    if (iv?.length !== IV_BYTES || tag?.length !== TAG_BYTES || ciphertext === undefined) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.enc, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(`${VERSION}.${key.id}.${aad}`, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }

  /** HMAC-SHA-256 of `value` under the active key, base64url. */
  mac(value: string): string {
    return b64u(this.#mac(this.#keys[0]!, value));
  }

  /** True when `mac` is the MAC of `value` under any configured key. Constant-time per key. */
  verifyMac(value: string, mac: string): boolean {
    if (typeof value !== 'string' || typeof mac !== 'string') return false;
    const given = fromB64u(mac);
    if (given?.length !== MAC_BYTES) return false;
    let ok = false;
    // Every key is tried so the time taken does not depend on which key matched.
    for (const key of this.#keys) {
      if (timingSafeEqual(this.#mac(key, value), given)) ok = true;
    }
    return ok;
  }

  #mac(key: SealingKey, value: string): Buffer {
    return createHmac('sha256', key.mac).update(value, 'utf8').digest();
  }
}
