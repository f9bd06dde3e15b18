import * as oidc from 'openid-client';
import { loadConfig } from '../config/load.js';
import type { IdpMetadata } from '../oauth/capabilities.js';
import { sizeCappedFetch } from '../oauth/http.js';
import { type CliCommand, parseFlags } from './command.js';
import { complianceMatrix, renderMatrix } from './compliance.js';

export const command: CliCommand = {
  name: 'check',
  summary: 'compliance matrix against the live IdP',
  usage: `Usage: fapi-bff check [--offline]

Prints the compliance matrix for the configuration in the environment, checked against the IdP's
live discovery metadata. Exit status 1 when the configuration is invalid or the IdP lacks a
capability an enabled feature needs: usable as a CI gate.
`,
  async run(io) {
    const { values } = parseFlags(io.args, { offline: { type: 'boolean' } });
    const config = await loadConfig(io.env);
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
    const rows = complianceMatrix(config, metadata);
    io.stdout.write(renderMatrix(rows, `${config.profile} — ${config.oidc.issuer.href}`));
    return rows.some((r) => r.status === 'missing at IdP') ? 1 : 0;
  },
};
