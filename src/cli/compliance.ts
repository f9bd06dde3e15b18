import type { BffConfig } from '../config/types.js';
import { type CapabilityCheck, type CapabilityId, capabilityChecks } from '../oauth/capability-checks.js';
import type { IdpMetadata } from '../oauth/capabilities.js';

/**
 * - `enabled`: on in this configuration and offered by the IdP (or needing nothing from it);
 * - `available`: off here, but the IdP offers it;
 * - `missing`: on here, but the IdP lacks it (the gate fails);
 * - `not-configured`: off here, and the IdP does not offer it either (or, for features the IdP only
 *   opts into, such as back-channel logout, the IdP does not offer it).
 */
export type Status = 'enabled' | 'available' | 'missing' | 'not-configured';

export interface MatrixRow {
  requirement: string;
  baseline: string;
  advanced: string;
  control: string;
  status: Status;
  /** What the IdP lacks, when anything (empty when the status says it all). */
  detail: string[];
}

interface RowSpec {
  requirement: string;
  baseline: string;
  advanced: string;
  control: string;
  /** The capability checks behind the row; the row is on when any of them is. */
  checks: CapabilityId[];
  /** Rows with no IdP capability: whether the feature is on here. */
  on?: boolean;
}

/**
 * The compliance matrix ("requirement → Baseline → Advanced → our control", docs/compliance.md), extended
 * with what the BFF ships, each row's status computed from the configuration and, when given, the
 * IdP's live metadata. Without metadata (`--offline`) an enabled row is reported as configured,
 * unverified against the IdP.
 */
export function complianceMatrix(
  config: BffConfig,
  metadata: IdpMetadata | undefined,
  /** Gaps found beyond the metadata (e.g. in the IdP's JWKS), added to their checks. */
  extraGaps: Partial<Record<CapabilityId, readonly string[]>> = {},
): MatrixRow[] {
  const checks = new Map<CapabilityId, CapabilityCheck>(
    capabilityChecks(config, metadata ?? {}).map((c) => [
      c.id,
      extraGaps[c.id]?.length ? { ...c, gaps: [...c.gaps, ...(extraGaps[c.id] ?? [])] } : c,
    ]),
  );
  const auth = config.oidc.tokenAuthMethod;
  const mtlsRoutes = [...config.routes.values()].filter((r) => r.mtls).map((r) => r.name);
  const jarEnc = config.jar.encryption;
  const jarmEnc = config.jarm.encryption;
  const specs: RowSpec[] = [
    {
      requirement: 'Discovery metadata',
      baseline: 'Required',
      advanced: 'Required',
      control: 'Startup capability check; metadata issuer must equal OIDC_ISSUER',
      checks: ['discovery'],
    },
    {
      requirement: 'PKCE S256',
      baseline: 'Required',
      advanced: 'Required',
      control: 'Always on; S256 only',
      checks: ['pkce'],
    },
    {
      requirement: 'PAR',
      baseline: 'Required',
      advanced: 'Required',
      control: 'PAR-first; the browser carries only client_id and request_uri (MS_BFF_PAR_ENABLED)',
      checks: ['par'],
    },
    {
      requirement: 'RFC 9207 iss',
      baseline: 'Required',
      advanced: 'Required',
      control: `Required on every response${config.interop.assumeIssParameter ? ' (MS_BFF_ASSUME_ISS_PARAMETER: not advertised, still required)' : ''}`,
      checks: ['iss'],
    },
    {
      requirement: 'Client authentication',
      baseline: 'private_key_jwt or mTLS',
      advanced: 'mTLS or private_key_jwt',
      control: auth === 'private_key_jwt' ? `private_key_jwt (${config.signingKey?.alg ?? '?'})` : auth,
      checks: ['client-auth'],
    },
    {
      requirement: 'ID token signature',
      baseline: 'Required',
      advanced: 'Required',
      control: `Verified, also from the token endpoint; alg pinned to ${config.oidc.idTokenAlg}`,
      checks: ['id-token'],
    },
    {
      requirement: 'Response mode form_post',
      baseline: 'Optional',
      advanced: 'Optional',
      control: 'MS_BFF_RESPONSE_MODE=form_post',
      checks: ['response-mode'],
    },
    {
      requirement: 'JAR (signed request objects)',
      baseline: 'Recommended',
      advanced: 'Required',
      control: `Signed request objects (${config.jar.signingAlg}) pushed via PAR (MS_BFF_JAR_ENABLED)`,
      checks: ['jar'],
    },
    {
      requirement: 'JAR encryption',
      baseline: 'Optional',
      advanced: 'Optional',
      control: jarEnc ? `Nested JWT encrypted ${jarEnc.alg}/${jarEnc.enc}` : 'MS_BFF_JAR_ENC_ALG',
      checks: ['jar-encryption'],
    },
    {
      requirement: 'JARM',
      baseline: 'Optional',
      advanced: 'Recommended/Required',
      control: `response_mode=${config.jarm.mode}; Appendix A checks (MS_BFF_JARM_ENABLED)`,
      checks: ['jarm'],
    },
    {
      requirement: 'JARM encryption',
      baseline: 'Optional',
      advanced: 'Optional',
      control: jarmEnc ? `Encrypted ${jarmEnc.alg}/${jarmEnc.enc} required` : 'MS_BFF_JARM_ENC_ALG',
      checks: ['jarm-encryption'],
    },
    {
      requirement: 'Sender constraint: DPoP',
      baseline: 'One of DPoP/mTLS',
      advanced: 'DPoP or mTLS',
      control: `DPoP-bound tokens, ${config.oidc.dpopAlg} key per session (MS_BFF_DPOP_ENABLED)`,
      checks: ['dpop'],
    },
    {
      requirement: 'Sender constraint: mTLS',
      baseline: 'One of DPoP/mTLS',
      advanced: 'DPoP or mTLS',
      control: mtlsRoutes.length
        ? `Certificate-bound tokens to routes ${mtlsRoutes.join(', ')}`
        : 'Routes with mtls: true',
      checks: ['mtls-binding'],
    },
    {
      requirement: 'mTLS endpoint aliases',
      baseline: 'With mTLS',
      advanced: 'With mTLS',
      control: 'MTLS_CERT presented to mtls_endpoint_aliases (RFC 8705 §5)',
      checks: ['mtls-aliases'],
    },
    {
      requirement: 'Back-channel logout',
      baseline: 'Optional',
      advanced: 'Optional',
      control: 'POST /auth/backchannel-logout (logout+jwt, sid)',
      checks: ['backchannel-logout'],
    },
    {
      requirement: 'Dynamic client registration',
      baseline: 'Optional',
      advanced: 'Optional',
      control: 'fapi-bff register (RFC 7591/7592), OIDC_CLIENT_REGISTRATION_FILE',
      checks: ['registration'],
    },
    {
      requirement: 'FIPS mode',
      baseline: '—',
      advanced: '—',
      control: 'FIPS_MODE: FIPS provider self-test at startup, approved algorithms and TLS suites only',
      checks: [],
      on: config.fipsMode,
    },
  ];
  return specs.map((spec) => {
    const rowChecks = spec.checks.map((id) => checks.get(id)).filter((c): c is CapabilityCheck => !!c);
    const on = spec.on ?? rowChecks.some((c) => c.enabled);
    const gaps = rowChecks.flatMap((c) => c.gaps);
    const optional = rowChecks.every((c) => c.optional === true) && rowChecks.length > 0;
    let status: Status;
    if (rowChecks.length === 0 || metadata === undefined) status = on ? 'enabled' : 'not-configured';
    else if (gaps.length === 0) status = on ? 'enabled' : 'available';
    else status = on && !optional ? 'missing' : 'not-configured';
    return {
      requirement: spec.requirement,
      baseline: spec.baseline,
      advanced: spec.advanced,
      control: spec.control,
      status,
      detail: metadata === undefined ? [] : gaps,
    };
  });
}

export function renderMarkdown(rows: MatrixRow[], title: string): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `# Compliance matrix: ${title}`,
    '',
    '| Requirement | Baseline | Advanced | Our control | Status | IdP lacks |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${cell(r.requirement)} | ${cell(r.baseline)} | ${cell(r.advanced)} | ${cell(r.control)} | ${r.status} | ${cell(r.detail.join('; '))} |`,
    ),
    '',
  ].join('\n');
}
