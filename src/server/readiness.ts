import type { KeyValueStore } from '../store/store.js';
import type { BffServices } from './services.js';

/** A store that does not answer within this counts as down (a scrape must not hang). */
const STORE_PING_TIMEOUT_MS = 1_000;

/**
 * What the admin listener's /readyz adds to the public report: JWKS age, our keys and their
 * states, the FIPS evidence collected at startup, the profile. Public parts only (kid, alg).
 */
export function adminReadinessDetail(s: BffServices): Record<string, unknown> {
  const jwksAge = s.jwks.ageSeconds();
  const signing = s.config.signingKey;
  const enc = s.config.jarm.encryption;
  return {
    jwks: {
      uri: String(s.idp.metadata.jwks_uri ?? ''),
      age_seconds: Number.isFinite(jwksAge) ? Math.round(jwksAge) : null,
    },
    keys: {
      signing: signing ? [{ kid: signing.kid, alg: signing.alg, state: 'active' }] : [],
      jarm_decryption: enc ? [{ kid: enc.key.kid ?? null, alg: enc.alg, state: 'active' }] : [],
    },
    fips: { required: s.config.fipsMode, node: process.versions.node, ...s.fips },
    profile: s.config.profile,
    metadata_age_seconds: Math.round(s.idp.metadataAgeMs() / 1000),
  };
}

/** True when the store answers a ping within a second (bff_store_up). */
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
