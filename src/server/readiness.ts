import { getFips } from 'node:crypto';
import type { BffServices } from './services.js';
import type { KeyValueStore } from '../store/store.js';

/** A store that does not answer within this is not ready (the probe must not hang). */
const STORE_PING_TIMEOUT_MS = 1_000;

export interface ReadinessReport {
  ready: boolean;
  /** What the public /readyz shows: enough for a load balancer, nothing about keys. */
  summary: Record<string, unknown>;
  /** What the admin listener shows: every check with its evidence. */
  detail: Record<string, unknown>;
}

/**
 * One readiness computation for both listeners. Ready means the store answers; the IdP metadata
 * and JWKS ages are reported (the last good ones stay in use while the IdP is down, so an IdP
 * outage alone does not take instances out of rotation: that would turn it into a full outage).
 */
export async function readiness(s: BffServices): Promise<ReadinessReport> {
  const storeOk = await pingStore(s.store);
  const fipsMode = getFips() === 1;
  const metadataAge = Math.round(s.idp.metadataAgeMs() / 1000);
  const jwksAge = s.jwks.ageSeconds();
  const ready = storeOk;
  const summary = {
    status: ready ? 'ready' : 'not_ready',
    fips_mode: fipsMode,
    checks: {
      store: { ok: storeOk, kind: s.store.kind },
      idp: { ok: true, issuer: s.idp.metadata.issuer, metadata_age_seconds: metadataAge },
    },
  };
  const signing = s.config.signingKey;
  const enc = s.config.jarm.encryption;
  const detail = {
    ...summary,
    checks: {
      ...summary.checks,
      jwks: {
        ok: !s.config.jarm.enabled || Number.isFinite(jwksAge),
        uri: String(s.idp.metadata.jwks_uri ?? ''),
        age_seconds: Number.isFinite(jwksAge) ? Math.round(jwksAge) : null,
      },
    },
    keys: {
      signing: signing ? [{ kid: signing.kid, alg: signing.alg, state: 'active' }] : [],
      jarm_decryption: enc ? [{ kid: enc.key.kid ?? null, alg: enc.alg, state: 'active' }] : [],
    },
    fips: { required: s.config.fipsMode, node: process.versions.node, ...s.fips },
    profile: s.config.profile,
  };
  return { ready, summary, detail };
}

/** True when the store answers a ping within a second. */
export async function pingStore(store: Pick<KeyValueStore, 'ping'>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      store.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), STORE_PING_TIMEOUT_MS);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
