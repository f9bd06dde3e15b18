import { writeFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import { loadConfig } from '../config/load.js';
import type { BffConfig } from '../config/types.js';
import type { CapabilityId } from '../oauth/capability-checks.js';
import type { IdpMetadata } from '../oauth/capabilities.js';
import { sizeCappedFetch } from '../oauth/http.js';
import { JwksCache } from '../oauth/jwks-cache.js';
import { type CliCommand, parseFlags, UsageError } from './command.js';
import { complianceMatrix, renderMarkdown } from './compliance.js';
import { developmentEnv } from './dev-env.js';

export const command: CliCommand = {
  name: 'check',
  summary: 'compliance matrix against the live IdP',
  usage: `Usage: fapi-bff check [--format md|json] [--out FILE] [--offline]

Prints the compliance matrix (requirement → FAPI 2.0 Baseline → Advanced → our control → status)
for the configuration in the environment, each row's status computed from that configuration and
the IdP's live discovery metadata (and, with JAR encryption configured without a BFF_JAR_ENC_KEY pin,
its JWKS, which must hold a key for MS_BFF_JAR_ENC_ALG):
  enabled         on here, and the IdP offers what it needs
  available       off here, but the IdP offers it
  missing         on here, but the IdP lacks it (the gate fails)
  not-configured  off here, and the IdP does not offer it either

Exit status: 0 when every enabled feature has what it needs, 1 when one is missing (or the
configuration is invalid, or the IdP cannot be reached), 2 on a usage error. Usable as a CI gate.

Without OIDC_ISSUER (the development setup), it checks the embedded IdP of the BFF that
\`npm start\` runs at MS_BFF_PUBLIC_URL (default http://localhost:$PORT, PORT default 8080).

Options:
  --format md|json  Markdown table (default) or JSON ({ issuer, profile, ok, rows: [...] })
  --out FILE        also write the report to FILE
  --offline         do not contact the IdP: report the configuration only
`,
  async run(io) {
    const { values } = parseFlags(io.args, {
      format: { type: 'string', default: 'md' },
      out: { type: 'string' },
      offline: { type: 'boolean' },
    });
    if (values.format !== 'md' && values.format !== 'json')
      throw new UsageError(`--format must be md or json (got "${values.format}")`);
    let env = io.env;
    let note: string | undefined;
    if (!io.env.OIDC_ISSUER?.trim()) {
      const dev = await developmentEnv(io.env);
      env = dev.env;
      note = dev.note;
      io.stderr.write(`fapi-bff check: ${note}\n`);
    }
    const config = await loadConfig(env);
    let metadata: IdpMetadata | undefined;
    if (!values.offline) {
      const discovered = await oidc.discovery(
        config.oidc.issuer,
        config.oidc.clientId,
        undefined,
        undefined,
        {
          execute: config.oidc.allowInsecureIssuer ? [oidc.allowInsecureRequests] : [],
          [oidc.customFetch]: sizeCappedFetch(),
          timeout: Math.ceil(config.oidc.timeoutMs / 1000),
        },
      );
      metadata = discovered.serverMetadata() as IdpMetadata;
    }
    const extraGaps: Partial<Record<CapabilityId, string[]>> = {};
    if (metadata) {
      const jarKey = await jarEncryptionKeyGap(config, metadata);
      if (jarKey) extraGaps['jar-encryption'] = [jarKey];
    }
    const rows = complianceMatrix(config, metadata, extraGaps);
    const ok = !rows.some((r) => r.status === 'missing');
    const report =
      values.format === 'json'
        ? `${JSON.stringify(
            {
              issuer: config.oidc.issuer.href,
              profile: config.profile,
              checked_against_idp: metadata !== undefined,
              ...(note ? { note } : {}),
              ok,
              rows,
            },
            null,
            2,
          )}\n`
        : renderMarkdown(
            rows,
            `${config.profile} — ${config.oidc.issuer.href}${metadata ? '' : ' (offline: not checked against the IdP)'}`,
          );
    io.stdout.write(report);
    if (values.out) writeFileSync(values.out, report);
    return ok ? 0 : 1;
  },
};

/**
 * With JAR encryption configured, the request object is encrypted to a key from the IdP's JWKS
 * (https://www.rfc-editor.org/rfc/rfc9101#section-6.1): advertising the alg in the metadata is not
 * enough, the JWKS must hold a key that fits it (the same selection the BFF makes at login).
 */
async function jarEncryptionKeyGap(config: BffConfig, md: IdpMetadata): Promise<string | undefined> {
  const alg = config.jar.encryption?.alg;
  // A pinned key (BFF_JAR_ENC_KEY) is used instead of the JWKS.
  if (!config.jar.enabled || alg === undefined || config.jar.encryption?.key !== undefined) return undefined;
  if (typeof md.jwks_uri !== 'string') return undefined;
  const jwks = new JwksCache({
    jwksUri: md.jwks_uri,
    fetch: sizeCappedFetch(),
    timeoutMs: config.oidc.timeoutMs,
  });
  if (!(await jwks.refresh()))
    return `jwks_uri could not be read, so no key to encrypt request objects with ${alg}`;
  return jwks.hasEncryptionKey(alg, config.fipsMode)
    ? undefined
    : `the IdP's JWKS (jwks_uri) has no key to encrypt request objects with ${alg} (use enc, fitting key type)`;
}
