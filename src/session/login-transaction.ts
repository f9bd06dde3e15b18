import { createHash, randomBytes } from 'node:crypto';
import { BffError } from '../errors.js';
import type { StoredDpopKey } from '../dpop/client.js';
import type { LoginRequestParameters } from '../oauth/login-parameters.js';
import { constantTimeEqual } from './constant-time.js';
import type { SessionSealer } from './sealing.js';
import type { Clock, KeyValueStore } from '../store/store.js';

/** Everything needed to finish one login, kept server-side and bound to the browser that started it
 * (https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.3.3.2). */
export interface LoginTransaction {
  state: string;
  nonce: string;
  /** RFC 7636 §4.1: 43–128 characters; S256 only. */
  codeVerifier: string;
  returnTo: string;
  /** Epoch ms. */
  createdAt: number;
  /** SHA-256 of the browser-binding cookie value of the browser that started the login. */
  binding: string;
  /** The session's DPoP key, made at login so PAR and the code are bound to it (RFC 9449 §10). */
  dpop?: StoredDpopKey | undefined;
  /** What the SPA asked of this login (acr_values, max_age, prompt), checked again at the callback. */
  requested?: LoginRequestParameters | undefined;
  /**
   * Whether this login asked for a JWT-secured response (JARM): the callback expects what the login
   * asked for, so a reload that switches JARM on or off does not break logins in flight. Absent
   * (older transactions): whatever the configuration says now.
   */
  jarm?: boolean | undefined;
}

/**
 * Login transactions, keyed by a hash of `state`, single-use (`take`) and short-lived. They are
 * bound to the browser by one shared binding cookie rather than one cookie per transaction, so
 * many tabs can log in at once without piling up cookies: each tab has its own state, all share
 * the binding (FAPI 2.0 §5.3.3.2-4: bound to the user agent that started the flow).
 */
export class LoginTransactions {
  constructor(
    private readonly store: KeyValueStore,
    private readonly sealer: SessionSealer,
    private readonly ttlSec: number,
    private readonly clock: Clock = Date.now,
    /** Open transactions one browser (binding cookie) may hold; more is refused before any IdP call. */
    private readonly maxPerBrowser = Number.POSITIVE_INFINITY,
  ) {}

  /** A fresh binding value for a browser that has none (or an invalid one); `v1.<random>.<mac>`. */
  newBinding(): string {
    const body = `v1.${randomBytes(32).toString('base64url')}`;
    return `${body}.${this.sealer.mac(body)}`;
  }

  /** The binding is only accepted with a valid MAC, so an attacker cannot choose it. */
  isValidBinding(value: string | undefined): value is string {
    if (!value || value.length > 200) return false;
    const i = value.lastIndexOf('.');
    return i > 0 && this.sealer.verifyMac(value.slice(0, i), value.slice(i + 1));
  }

  async save(tx: Omit<LoginTransaction, 'createdAt' | 'binding'>, bindingValue: string): Promise<void> {
    if (tx.codeVerifier.length < 43 || tx.codeVerifier.length > 128) {
      throw new BffError('BFF_INTERNAL', { reason: 'pkce_verifier_length' });
    }
    const record: LoginTransaction = { ...tx, createdAt: this.clock(), binding: hash(bindingValue) };
    const key = txKey(tx.state);
    if (Number.isFinite(this.maxPerBrowser)) await this.reserve(record.binding, key);
    await this.store.set(key, this.sealer.seal(JSON.stringify(record), key), this.ttlSec * 1000);
  }

  /**
   * Count this browser's open transactions in an index keyed by its binding. Entries of used or
   * expired transactions are pruned only when the cap is reached, so the usual login costs one
   * index write (and a read).
   */
  private async reserve(binding: string, key: string): Promise<void> {
    const index = browserIndex(binding);
    let members = await this.store.indexMembers(index);
    if (members.length >= this.maxPerBrowser) {
      for (const member of members) {
        if ((await this.store.get(member)) === undefined) await this.store.removeFromIndex(index, member);
      }
      members = await this.store.indexMembers(index);
      if (members.length >= this.maxPerBrowser) {
        throw new BffError('BFF_RATE_LIMITED', {
          reason: 'login_transactions',
          detail: 'too many logins in progress in this browser; finish or wait for one',
          headers: { 'retry-after': String(this.ttlSec) },
        });
      }
    }
    await this.store.addToIndex(index, key, this.ttlSec * 1000);
  }

  /**
   * Take (read and delete) the transaction for `state`. Single use defeats replayed callbacks; the
   * binding check defeats a callback delivered to another browser (login CSRF, code injection).
   */
  async take(
    state: string,
    bindingValue: string | undefined,
    /** A refusal decided by the transaction itself, before it is used up (the callback's JARM check). */
    refuse?: (tx: LoginTransaction) => BffError | undefined,
  ): Promise<LoginTransaction> {
    if (state.length === 0 || state.length > 512) {
      throw new BffError('BFF_CALLBACK_INVALID', { reason: 'state', detail: 'missing or malformed state' });
    }
    const key = txKey(state);
    // Read, check the browser binding, and only then consume: a callback URL replayed from another
    // browser (anyone who saw it) must not use up the login of the browser that started it.
    const sealed = await this.store.get(key);
    const opened = sealed === undefined ? undefined : this.sealer.open(sealed, key);
    if (opened === undefined) {
      throw new BffError('BFF_CALLBACK_TRANSACTION_EXPIRED', { reason: 'unknown_or_used' });
    }
    const tx = JSON.parse(opened) as LoginTransaction;
    if (Number.isFinite(this.maxPerBrowser))
      await this.store.removeFromIndex(browserIndex(tx.binding), key).catch(() => undefined);
    if (!this.isValidBinding(bindingValue) || !constantTimeEqual(hash(bindingValue), tx.binding)) {
      throw new BffError('BFF_CALLBACK_STATE_MISMATCH', { reason: 'binding' });
    }
    const refusal = tx.state === state ? refuse?.(tx) : undefined;
    if (refusal) throw refusal;
    // Single use (RFC 6749 §10.5): the atomic take decides between concurrent callbacks of this browser.
    if ((await this.store.take(key)) !== sealed) {
      throw new BffError('BFF_CALLBACK_TRANSACTION_EXPIRED', { reason: 'unknown_or_used' });
    }
    if (this.clock() - tx.createdAt > this.ttlSec * 1000) {
      throw new BffError('BFF_CALLBACK_TRANSACTION_EXPIRED', { reason: 'expired' });
    }
    if (tx.state !== state) throw new BffError('BFF_CALLBACK_STATE_MISMATCH', { reason: 'state' });
    return tx;
  }
}

function txKey(state: string): string {
  return `t:${hash(state)}`;
}

function browserIndex(bindingHash: string): string {
  return `tb:${bindingHash}`;
}

function hash(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}
