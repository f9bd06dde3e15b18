import { writeFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import { loadConfig } from '../config/load.js';
import type { BffConfig, FrontendConfig } from '../config/types.js';
import type { CapabilityId } from '../oauth/capability-checks.js';
import type { IdpMetadata } from '../oauth/capabilities.js';
import { sizeCappedFetch } from '../oauth/http.js';
import { JwksCache } from '../oauth/jwks-cache.js';
import { type CliCommand, parseFlags, UsageError } from './command.js';
import { complianceMatrix, type MatrixRow, renderMarkdown } from './compliance.js';
import { developmentEnv } from './dev-env.js';
import { chooseFrontend, FRONTEND_OPTION, frontendConfig } from './frontend-choice.js';

export const command: CliCommand = {
  name: 'check',
  summary: 'compliance matrix against the live IdP',
  usage: `Usage: fapi-bff check [--format md|json] [--out FILE] [--offline] [--frontend NAME]

Prints the compliance matrix (requirement → FAPI 2.0 Baseline → Advanced → our control → status)
for the configuration in the environment, each row's status computed from that configuration and
the IdP's live discovery metadata (and, with JAR encryption configured without a BFF_JAR_ENC_KEY pin,
its JWKS, which must hold a key for MS_BFF_JAR_ENC_ALG):
  enabled         on here, and the IdP offers what it needs
  available       off here, but the IdP offers it
  missing         on here, but the IdP lacks it (the gate fails)
  not-configured  off here, and the IdP does not offer it either

With several frontends in the MS_BFF_CONFIG file, every frontend is checked (each has its own
client, redirect URI and flags): one matrix per frontend, headed by its name; in JSON, each row
carries its \`frontend\` and \`frontends\` lists each one's name, client_id, redirect_uri and ok. The
IdP's metadata and JWKS are read once. The gate fails when any frontend misses something.

Exit status: 0 when every enabled feature has what it needs, 1 when one is missing (or the
configuration is invalid, or the IdP cannot be reached), 2 on a usage error. Usable as a CI gate.

Without OIDC_ISSUER (the development setup), it checks the embedded IdP of the BFF that
\`npm start\` runs at MS_BFF_PUBLIC_URL (default http://localhost:$PORT, PORT default 8080).

Options:
  --format md|json  Markdown table (default) or JSON ({ issuer, profile, ok, rows: [...] })
  --out FILE        also write the report to FILE
  --offline         do not contact the IdP: report the configuration only
  --frontend NAME   check only this frontend of the MS_BFF_CONFIG file
`,
  async run(io) {
    const { values } = parseFlags(io.args, {
      format: { type: 'string', default: 'md' },
      out: { type: 'string' },
      offline: { type: 'boolean' },
      ...FRONTEND_OPTION,
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
    const frontends =
      values.frontend === undefined ? config.frontends : [chooseFrontend(config, values.frontend)];
    let metadata: IdpMetadata | undefined;
    if (!values.offline) {
      // The issuer (and TLS to it) is the process's: one discovery for every frontend.
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
    const jwks = metadata && idpJwks(config, metadata);
    const checked: { frontend: FrontendConfig; config: BffConfig; rows: MatrixRow[]; ok: boolean }[] = [];
    for (const frontend of frontends) {
      const own = frontendConfig(config, frontend);
      const extraGaps: Partial<Record<CapabilityId, string[]>> = {};
      if (metadata && jwks) {
        const jarKey = await jarEncryptionKeyGap(own, jwks);
        if (jarKey) extraGaps['jar-encryption'] = [jarKey];
      }
      const rows = complianceMatrix(own, metadata, extraGaps);
      checked.push({ frontend, config: own, rows, ok: !rows.some((r) => r.status === 'missing') });
    }
    const ok = checked.every((c) => c.ok);
    // One frontend (the environment alone, or a file with one): the report as it always was.
    const single = config.frontends.length === 1 ? checked[0] : undefined;
    const header = {
      issuer: config.oidc.issuer.href,
      profile: config.profile,
      checked_against_idp: metadata !== undefined,
      ...(note ? { note } : {}),
      ok,
    };
    const title = (c: (typeof checked)[number]) =>
      `${config.profile} — ${config.oidc.issuer.href}${single ? '' : ` — frontend ${c.frontend.name} (client ${c.config.oidc.clientId}, ${c.config.redirectUri})`}${metadata ? '' : ' (offline: not checked against the IdP)'}`;
    const report =
      values.format === 'json'
        ? `${JSON.stringify(
            single
              ? { ...header, rows: single.rows }
              : {
                  ...header,
                  frontends: checked.map((c) => ({
                    name: c.frontend.name,
                    client_id: c.config.oidc.clientId,
                    redirect_uri: c.config.redirectUri,
                    ok: c.ok,
                  })),
                  rows: checked.flatMap((c) => c.rows.map((r) => ({ frontend: c.frontend.name, ...r }))),
                },
            null,
            2,
          )}\n`
        : checked.map((c) => renderMarkdown(c.rows, title(c))).join('\n');
    io.stdout.write(report);
    if (values.out) writeFileSync(values.out, report);
    if (!single) {
      const failed = checked.filter((c) => !c.ok).map((c) => c.frontend.name);
      if (failed.length > 0)
        io.stderr.write(`fapi-bff check: missing capabilities for frontend ${failed.join(', ')}\n`);
    }
    return ok ? 0 : 1;
  },
};

/**
 * The IdP's JWKS, read at most once for every frontend that needs it (jwks_uri absent: none). A
 * failed read is remembered as such: each frontend reports it.
 */
function idpJwks(config: BffConfig, md: IdpMetadata): (() => Promise<JwksCache | undefined>) | undefined {
  if (typeof md.jwks_uri !== 'string') return undefined;
  const cache = new JwksCache({
    jwksUri: md.jwks_uri,
    fetch: sizeCappedFetch(),
    timeoutMs: config.oidc.timeoutMs,
  });
  let read: Promise<JwksCache | undefined> | undefined;
  return () => (read ??= cache.refresh().then((ok) => (ok ? cache : undefined)));
}

/**
 * With JAR encryption configured, the request object is encrypted to a key from the IdP's JWKS
 * (https://www.rfc-editor.org/rfc/rfc9101#section-6.1): advertising the alg in the metadata is not
 * enough, the JWKS must hold a key that fits it (the same selection the BFF makes at login).
 */
async function jarEncryptionKeyGap(
  config: BffConfig,
  jwks: () => Promise<JwksCache | undefined>,
): Promise<string | undefined> {
  const alg = config.jar.encryption?.alg;
  // A pinned key (BFF_JAR_ENC_KEY) is used instead of the JWKS.
  if (!config.jar.enabled || alg === undefined || config.jar.encryption?.key !== undefined) return undefined;
  const cache = await jwks();
  if (!cache) return `jwks_uri could not be read, so no key to encrypt request objects with ${alg}`;
  return cache.hasEncryptionKey(alg, config.fipsMode)
    ? undefined
    : `the IdP's JWKS (jwks_uri) has no key to encrypt request objects with ${alg} (use enc, fitting key type)`;
}
