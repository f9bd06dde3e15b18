import { type FSWatcher, watch } from 'node:fs';
import { calculateJwkThumbprint, type CryptoKey, type JWK } from 'jose';
import { type DecryptionKey, type JweAlg, loadDecryptionKey } from '../config/enc-keys.js';
import { loadSigningKey } from '../config/keys.js';
import type { SigningAlg } from '../config/enums.js';
import type { SigningKey } from '../config/types.js';
import { fipsJwkProblem } from '../fips/policy.js';
import { type KeyFileJwk, readKeySource } from './key-files.js';
import { type KeyState, nextChange, schedule } from './schedule.js';

interface RingKey {
  readonly kid: string;
  readonly use: 'sig' | 'enc';
  readonly createdAt: number;
  readonly publishedAt: number;
  readonly thumbprint: string;
  readonly signing?: SigningKey;
  readonly decryption?: DecryptionKey;
}

export interface KeyRingOptions {
  /** BFF_JWT_SIGNING_KEY when it names a file or directory (re-read on change); else the fixed key. */
  readonly signing?: { readonly path?: string; readonly fixed?: SigningKey; readonly alg: SigningAlg };
  /** BFF_JARM_PRIV_KEY likewise. */
  readonly decryption?: { readonly path?: string; readonly fixed?: DecryptionKey; readonly alg: JweAlg };
  readonly prepublishSec: number;
  readonly fipsMode: boolean;
  readonly clock?: () => number;
  readonly log?: { info(o: object, m: string): void; error(o: object, m: string): void };
}

/** What `keys list` and the admin report show: never private material. */
export interface KeyInfo {
  readonly kid: string;
  readonly use: 'sig' | 'enc';
  readonly alg: string;
  readonly state: KeyState;
  readonly thumbprint: string;
  readonly created_at: number;
}

/** A change of the active key of one use (the `key.rotated` audit event): ids only, never key material. */
export interface KeyRotation {
  readonly use: 'sig' | 'enc';
  readonly kid: string;
  /** RFC 7638 SHA-256 thumbprint of the new active key's public part. */
  readonly thumbprint: string;
  readonly previousKid: string;
}

/**
 * Our key sets (signing keys for client assertions and request objects; decryption keys for JARM),
 * published at /.well-known/jwks.json and scheduled next → active → retiring (schedule.ts). A set
 * named by a path is re-read on file change or `reload()` (SIGHUP); the new set replaces the old
 * only when every key in it is valid.
 */
export class KeyRing {
  private keys: RingKey[] = [];
  private watchers: FSWatcher[] = [];
  private debounce: NodeJS.Timeout | undefined;
  private readonly clock: () => number;
  /** The active kid per use as last seen: a difference is a rotation. */
  private readonly lastActive = new Map<'sig' | 'enc', string>();
  private readonly rotationListeners: ((rotation: KeyRotation) => void)[] = [];
  private rotationTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly opts: KeyRingOptions) {
    this.clock = opts.clock ?? Date.now;
  }

  static async open(opts: KeyRingOptions): Promise<KeyRing> {
    const ring = new KeyRing(opts);
    const problem = await ring.reload();
    if (problem) throw new Error(problem);
    return ring;
  }

  /** The active signing key now (changes when a next key has been published long enough). */
  signingKey(): SigningKey | undefined {
    this.noticeRotation();
    return this.active('sig')?.signing;
  }

  /** The decryption key for a JWE `kid`: any published key decrypts (retiring ones too). */
  decryptionKey(kid: string | undefined): CryptoKey | undefined {
    this.noticeRotation();
    const enc = this.keys.filter((k) => k.use === 'enc');
    const match = kid === undefined ? this.active('enc') : enc.find((k) => k.kid === kid);
    return match?.decryption?.key;
  }

  /** Public keys, active first per use, for /.well-known/jwks.json. */
  publicJwks(): JWK[] {
    const states = this.states();
    const rank: Record<KeyState, number> = { active: 0, next: 1, retiring: 2 };
    return [...this.keys]
      .sort((a, b) =>
        a.use === b.use
          ? rank[states.get(a.kid) ?? 'retiring'] - rank[states.get(b.kid) ?? 'retiring']
          : a.use === 'sig'
            ? -1
            : 1,
      )
      .map((k) => ({ ...(k.signing?.publicJwk ?? k.decryption?.publicJwk) }) as JWK);
  }

  list(): KeyInfo[] {
    const states = this.states();
    return this.keys.map((k) => ({
      kid: k.kid,
      use: k.use,
      alg: (k.signing?.alg ?? k.decryption?.publicJwk.alg ?? '') as string,
      state: states.get(k.kid) ?? 'retiring',
      thumbprint: k.thumbprint,
      created_at: k.createdAt,
    }));
  }

  /** When the schedule next changes (ms since epoch), if it will. */
  nextChange(): number | undefined {
    return nextChange(this.keys, this.clock(), this.opts.prepublishSec);
  }

  /** Re-read the key files; returns a problem (and keeps the current set) or undefined. */
  async reload(): Promise<string | undefined> {
    try {
      const next: RingKey[] = [];
      if (this.opts.signing) next.push(...(await this.loadUse('sig')));
      if (this.opts.decryption) next.push(...(await this.loadUse('enc')));
      const kids = new Set<string>();
      for (const k of next) {
        if (kids.has(k.kid)) throw new Error(`kid ${k.kid} appears twice`);
        kids.add(k.kid);
      }
      const added = next.filter((k) => !this.keys.some((old) => old.kid === k.kid)).map((k) => k.kid);
      const removed = this.keys.filter((k) => !kids.has(k.kid)).map((k) => k.kid);
      this.keys = next;
      if (added.length || removed.length)
        this.opts.log?.info({ added, removed, keys: this.list() }, 'key set loaded');
      this.noticeRotation();
      this.armRotationTimer();
      return undefined;
    } catch (err) {
      const problem = `key set not replaced: ${(err as Error).message}`;
      this.opts.log?.error({ problem }, 'key set reload refused');
      return problem;
    }
  }

  /** Re-read on change of the key files (debounced: editors write in several steps). */
  watch(): void {
    for (const path of [this.opts.signing?.path, this.opts.decryption?.path]) {
      if (!path) continue;
      try {
        const w = watch(path, () => {
          clearTimeout(this.debounce);
          this.debounce = setTimeout(() => void this.reload(), 250);
        });
        w.on('error', () => undefined);
        w.unref();
        this.watchers.push(w);
      } catch {
        // A path that cannot be watched is still reloaded on SIGHUP.
      }
    }
  }

  /**
   * Called whenever the active key of a use changes: when a next key's pre-publish window ends
   * (a timer fires then, so the event does not wait for the next signature) or a reload removes or
   * replaces the active one. The key set at start is not a rotation.
   */
  onRotated(listener: (rotation: KeyRotation) => void): () => void {
    this.noticeRotation();
    this.rotationListeners.push(listener);
    this.armRotationTimer();
    return () => {
      const i = this.rotationListeners.indexOf(listener);
      if (i >= 0) this.rotationListeners.splice(i, 1);
      if (this.rotationListeners.length === 0) clearTimeout(this.rotationTimer);
    };
  }

  close(): void {
    clearTimeout(this.debounce);
    clearTimeout(this.rotationTimer);
    this.rotationTimer = undefined;
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }

  private noticeRotation(): void {
    for (const use of ['sig', 'enc'] as const) {
      const active = this.active(use);
      if (!active) continue;
      const previousKid = this.lastActive.get(use);
      this.lastActive.set(use, active.kid);
      if (previousKid === undefined || previousKid === active.kid) continue;
      const rotation = { use, kid: active.kid, thumbprint: active.thumbprint, previousKid };
      for (const listener of this.rotationListeners) listener(rotation);
    }
  }

  /** One unref'd timer at the schedule's next change, only while someone listens. */
  private armRotationTimer(): void {
    clearTimeout(this.rotationTimer);
    this.rotationTimer = undefined;
    if (this.rotationListeners.length === 0) return;
    const at = this.nextChange();
    if (at === undefined) return;
    this.rotationTimer = setTimeout(
      () => {
        this.noticeRotation();
        this.armRotationTimer();
      },
      Math.max(0, at - this.clock()) + 10,
    );
    this.rotationTimer.unref();
  }

  private states(): Map<string, KeyState> {
    const now = this.clock();
    const out = new Map<string, KeyState>();
    for (const use of ['sig', 'enc'] as const) {
      for (const [kid, s] of schedule(
        this.keys.filter((k) => k.use === use),
        now,
        this.opts.prepublishSec,
      ))
        out.set(kid, s);
    }
    return out;
  }

  private active(use: 'sig' | 'enc'): RingKey | undefined {
    const states = schedule(
      this.keys.filter((k) => k.use === use),
      this.clock(),
      this.opts.prepublishSec,
    );
    return this.keys.find((k) => k.use === use && states.get(k.kid) === 'active');
  }

  private async loadUse(use: 'sig' | 'enc'): Promise<RingKey[]> {
    const spec = use === 'sig' ? this.opts.signing : this.opts.decryption;
    if (!spec) return [];
    const now = this.clock();
    const previous = (kid: string) => this.keys.find((k) => k.kid === kid && k.use === use);
    if (!spec.path) {
      const fixed = use === 'sig' ? this.opts.signing?.fixed : this.opts.decryption?.fixed;
      if (!fixed) return [];
      const publicJwk = fixed.publicJwk;
      return [
        {
          kid: fixed.kid,
          use,
          createdAt: 0,
          publishedAt: previous(fixed.kid)?.publishedAt ?? now,
          thumbprint: await calculateJwkThumbprint(publicJwk as JWK, 'sha256'),
          ...(use === 'sig' ? { signing: fixed as SigningKey } : { decryption: fixed as DecryptionKey }),
        },
      ];
    }
    const jwks = readKeySource(spec.path).filter((k) => (k.use ?? use) === use);
    if (jwks.length === 0) throw new Error(`${spec.path} holds no ${use} key`);
    const out: RingKey[] = [];
    for (const jwk of jwks) out.push(await this.importKey(jwk, use, spec.alg, previous, now));
    return out;
  }

  private async importKey(
    jwk: KeyFileJwk,
    use: 'sig' | 'enc',
    alg: string,
    previous: (kid: string) => RingKey | undefined,
    now: number,
  ): Promise<RingKey> {
    const name = jwk.kid ?? '(no kid)';
    if (typeof jwk.kid !== 'string' || jwk.kid === '') throw new Error('every key needs a kid');
    if (jwk.d === undefined) throw new Error(`key ${name} is not a private key`);
    const fipsProblem = this.opts.fipsMode ? fipsJwkProblem(jwk) : undefined;
    if (fipsProblem) throw new Error(`key ${name}: ${fipsProblem}`);
    if (jwk.alg !== undefined && jwk.alg !== alg)
      throw new Error(`key ${name} is ${jwk.alg}, the set is ${alg}`);
    const { iat: _iat, ...bare } = jwk;
    const loaded =
      use === 'sig'
        ? await loadSigningKey(JSON.stringify(bare), alg as SigningAlg)
        : await loadDecryptionKey(JSON.stringify(bare), alg as JweAlg);
    if (typeof loaded === 'string') throw new Error(`key ${name}: ${loaded}`);
    const publicJwk = loaded.publicJwk as JWK;
    return {
      kid: jwk.kid,
      use,
      createdAt: typeof jwk.iat === 'number' ? jwk.iat : 0,
      publishedAt: previous(jwk.kid)?.publishedAt ?? now,
      thumbprint: await calculateJwkThumbprint(publicJwk, 'sha256'),
      ...(use === 'sig' ? { signing: loaded as SigningKey } : { decryption: loaded as DecryptionKey }),
    };
  }
}
