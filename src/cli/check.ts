import * as oidc from 'openid-client';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import type { IdpMetadata } from '../oauth/capabilities.js';
import { sizeCappedFetch } from '../oauth/http.js';
import { complianceMatrix, renderMatrix } from './compliance.js';

/**
 * `npm run check [-- --offline]`: the compliance matrix for the configuration in the environment,
 * checked against the IdP's live metadata. Exit status 1 when configuration is invalid or the IdP
 * lacks a capability an enabled feature needs: usable as a CI gate (seed 002 Milestone 0).
 */
const offline = process.argv.includes('--offline');
try {
  const config = await loadConfig(process.env);
  let metadata: IdpMetadata | undefined;
  if (!offline) {
    const discovered = await oidc.discovery(config.oidc.issuer, config.oidc.clientId, undefined, undefined, {
      execute: config.oidc.allowInsecureIssuer ? [oidc.allowInsecureRequests] : [],
      [oidc.customFetch]: sizeCappedFetch(),
      timeout: Math.ceil(config.oidc.timeoutMs / 1000),
    });
    metadata = discovered.serverMetadata() as IdpMetadata;
  }
  const rows = complianceMatrix(config, metadata);
  process.stdout.write(renderMatrix(rows, `${config.profile} — ${config.oidc.issuer.href}`));
  if (rows.some((r) => r.status === 'missing at IdP')) process.exit(1);
} catch (err) {
  process.stderr.write(
    `${err instanceof ConfigError ? err.toString() : `fapi-bff check: ${(err as Error).message}`}\n`,
  );
  process.exit(1);
}
