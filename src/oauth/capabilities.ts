import type { BffConfig } from '../config/types.js';
import { capabilityChecks, type IdpMetadata } from './capability-checks.js';

export type { IdpMetadata } from './capability-checks.js';

/**
 * What the enabled features need from the IdP, checked once at startup so a misconfigured pair
 * fails fast with every gap named, rather than at the first user's login. The same checks feed the
 * compliance gate (capability-checks.ts).
 *
 * @see FAPI 2.0 Security Profile §5.3.3.1-9/-11 (metadata), §5.3.3.2 (PAR, PKCE, RFC 9207)
 * @see RFC 8414 §2 (metadata names and defaults)
 */
export function missingCapabilities(config: BffConfig, md: IdpMetadata): string[] {
  return capabilityChecks(config, md)
    .filter((c) => c.startup && c.enabled)
    .flatMap((c) => c.gaps);
}
