import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { exportJWK, generateKeyPair } from 'jose';
import { IDP_PRESETS, type IdpPreset } from '../config/enums.js';
import { loadConfig } from '../config/load.js';
import { PRESETS } from '../config/presets.js';
import type { IdpMetadata } from '../oauth/capabilities.js';
import { capabilityChecks } from '../oauth/capability-checks.js';

/**
 * What each preset's IdP supports, as the capability checks shared by the startup check and
 * `fapi-bff check` see it (oauth/capability-checks.ts): every feature is a
 * configuration (the preset plus that feature's switch, in the production profile with the preset's
 * weakening switches acknowledged) checked against the IdP's published discovery document
 * (docs/interop/discovery/<preset>.json, each with its source in `_fixture`). The README table and
 * docs/interop/presets.md are generated from these results (`npm run docs`, drift-tested).
 */

export const DISCOVERY_DIR = 'docs/interop/discovery';

export interface Fixture {
  readonly source: string;
  readonly reconstructed: boolean;
  readonly notes: string;
}

export interface FeatureResult {
  readonly feature: string;
  /** Gaps the capability check reports for this feature (beyond the baseline's for the others). */
  readonly gaps: readonly string[];
  /** Interop switches the preset turned on that this result relies on. */
  readonly switches: readonly string[];
}

export interface PresetReport {
  readonly preset: IdpPreset;
  readonly fixture: Fixture | undefined;
  readonly features: readonly FeatureResult[];
  /** Members read from the document, not checked at startup. */
  readonly advertised: Readonly<Record<string, boolean>>;
}

/** The features of the table, each the environment that turns it on. */
export const FEATURES: readonly { name: string; env: Record<string, string> }[] = [
  { name: 'FAPI 2.0 baseline', env: {} },
  { name: 'client_secret_basic', env: { MS_BFF_TOKEN_AUTH_METHOD: 'client_secret_basic' } },
  { name: 'DPoP', env: { MS_BFF_DPOP_ENABLED: 'true' } },
  { name: 'JAR', env: { MS_BFF_JAR_ENABLED: 'true' } },
  { name: 'JARM', env: { MS_BFF_JARM_ENABLED: 'true' } },
];

const ADVERTISED = {
  revocation: 'revocation_endpoint',
  'RP-initiated logout': 'end_session_endpoint',
  'back-channel logout': 'backchannel_logout_supported',
} as const;

export function readFixture(preset: IdpPreset): (IdpMetadata & { _fixture: Fixture }) | undefined {
  try {
    return JSON.parse(readFileSync(`${DISCOVERY_DIR}/${preset}.json`, 'utf8')) as IdpMetadata & {
      _fixture: Fixture;
    };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The capability check's verdict on `metadata` for every feature, with `preset` applied. */
export async function evaluatePreset(
  preset: IdpPreset,
  metadata: IdpMetadata | undefined,
  { applyPreset = true }: { applyPreset?: boolean } = {},
): Promise<FeatureResult[]> {
  if (!metadata || typeof metadata.issuer !== 'string') return [];
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const key = { ...(await exportJWK(privateKey)), kid: 'matrix', alg: 'ES256', use: 'sig' };
  const weakening = Object.keys(PRESETS[preset].settings).filter((v) => v !== 'MS_BFF_ASSUME_ISS_PARAMETER');
  const base = {
    OIDC_ISSUER: metadata.issuer,
    OIDC_CLIENT_ID: 'bff',
    OIDC_CLIENT_SECRET: 'secret',
    BFF_JWT_SIGNING_KEY: JSON.stringify(key),
    MS_BFF_PUBLIC_URL: 'https://app.example.com',
    MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
    MS_BFF_PROFILE: 'production',
    ...(applyPreset ? { MS_BFF_IDP_PRESET: preset, MS_BFF_ACKNOWLEDGE_WEAKENED: weakening.join(',') } : {}),
  };
  const results: FeatureResult[] = [];
  let baseline: string[] = [];
  for (const feature of FEATURES) {
    const config = await loadConfig({ ...base, ...feature.env });
    // What `fapi-bff check` reports as missing: the enabled, non-optional checks with gaps.
    const gaps = capabilityChecks(config, metadata)
      .filter((c) => c.enabled && !c.optional)
      .flatMap((c) => c.gaps);
    if (feature.name === FEATURES[0]?.name) baseline = gaps;
    const own = feature === FEATURES[0] ? gaps : gaps.filter((g) => !baseline.includes(g));
    // The switches this feature leans on: those that are on and apply to it.
    const switches = config.interop.active.filter((s) =>
      relevant(s, config.oidc.tokenAuthMethod, feature.name),
    );
    results.push({ feature: feature.name, gaps: own, switches: own.length === 0 ? switches : [] });
  }
  return results;
}

function relevant(variable: string, authMethod: string, feature: string): boolean {
  switch (variable) {
    case 'MS_BFF_ASSUME_ISS_PARAMETER':
      return true;
    case 'MS_BFF_CLIENT_ASSERTION_AUD':
      return authMethod === 'private_key_jwt';
    case 'MS_BFF_JARM_MAX_LIFETIME_SECONDS':
      return feature === 'JARM';
    default:
      return false;
  }
}

export async function presetReports(): Promise<PresetReport[]> {
  const reports: PresetReport[] = [];
  for (const preset of IDP_PRESETS) {
    const doc = readFixture(preset);
    const advertised: Record<string, boolean> = {};
    for (const [label, member] of Object.entries(ADVERTISED)) {
      advertised[label] =
        doc !== undefined &&
        doc[member as keyof typeof doc] !== undefined &&
        doc[member as keyof typeof doc] !== false;
    }
    reports.push({
      preset,
      fixture: doc?._fixture,
      features: await evaluatePreset(preset, doc),
      advertised,
    });
  }
  return reports;
}

function cell(result: FeatureResult | undefined): string {
  if (!result) return '—';
  if (result.gaps.length > 0) return 'missing';
  return result.switches.length > 0 ? 'yes (preset)' : 'yes';
}

const README_BEGIN =
  '<!-- BEGIN IdP table: generated by `npm run docs` from docs/interop/discovery/ and src/config/presets.ts -->';
const README_END = '<!-- END IdP table -->';

/** The README's IdPs × features table. */
export function renderReadmeTable(reports: readonly PresetReport[]): string {
  const header = [
    'IdP (`MS_BFF_IDP_PRESET`)',
    'source',
    ...FEATURES.map((f) => f.name),
    ...Object.keys(ADVERTISED),
  ];
  const rows = reports.map((r) => {
    const source = !r.fixture
      ? 'no published document'
      : r.fixture.reconstructed
        ? 'docs (partial)'
        : r.preset === 'oidc-provider' || r.preset === 'glewlwyd'
          ? 'live, tested here'
          : 'vendor docs';
    return [
      `\`${r.preset}\``,
      source,
      ...FEATURES.map((f) => cell(r.features.find((x) => x.feature === f.name))),
      ...Object.keys(ADVERTISED).map((k) =>
        !r.fixture ? '—' : r.advertised[k] ? 'advertised' : 'not advertised',
      ),
    ];
  });
  return [
    README_BEGIN,
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    README_END,
  ].join('\n');
}

export function withIdpTable(readme: string, reports: readonly PresetReport[]): string {
  const start = readme.indexOf(README_BEGIN);
  const end = readme.indexOf(README_END);
  if (start === -1 || end === -1) throw new Error('README.md has no IdP table markers');
  return readme.slice(0, start) + renderReadmeTable(reports) + readme.slice(end + README_END.length);
}

/** docs/interop/presets.md: every preset's settings with their sources, and the check's verdicts. */
export function renderPresetsDoc(reports: readonly PresetReport[]): string {
  const out = [
    '# IdP presets',
    '',
    '<!-- Generated by `npm run docs` from src/config/presets.ts and docs/interop/discovery/. Do not edit by hand; CI checks for drift. -->',
    '',
    '`MS_BFF_IDP_PRESET=<name>` fills in the interop switches a known IdP needs; every variable you set yourself wins.',
    'A preset never acknowledges a weakening: in production, name each weakening switch it sets in',
    '`MS_BFF_ACKNOWLEDGE_WEAKENED` (the BFF refuses to start otherwise and says which). Each verdict below is what the',
    "capability checks (shared by the startup check and `fapi-bff check`) say about the IdP's published discovery",
    'document with the preset applied, in the production profile; run `fapi-bff check` against your live IdP.',
    '',
  ];
  for (const r of reports) {
    const preset = PRESETS[r.preset];
    out.push(`## \`${r.preset}\`: ${preset.title}`, '');
    const settings = Object.entries(preset.settings);
    if (settings.length === 0) out.push('Sets nothing: the defaults (FAPI 2.0 as specified) fit.', '');
    else {
      out.push('| variable | value | why (source) |', '| --- | --- | --- |');
      for (const [name, value] of settings)
        out.push(`| \`${name}\` | \`${value}\` | ${preset.reasons[name] ?? ''} |`);
      out.push('');
    }
    out.push(`Documentation: ${preset.documentation.join(', ')}`, '');
    if (!r.fixture) {
      out.push(
        'Discovery document: none committed. No published discovery document of this IdP was found in the documentation available to this project; run `fapi-bff check` against your instance.',
        '',
      );
      continue;
    }
    out.push(
      `Discovery document: [\`${DISCOVERY_DIR}/${r.preset}.json\`](discovery/${r.preset}.json), from ${r.fixture.source}${r.fixture.reconstructed ? ' (reconstructed: see its `_fixture.notes`)' : ''}.`,
      '',
      '| feature | capability check |',
      '| --- | --- |',
    );
    for (const f of r.features) {
      const verdict =
        f.gaps.length > 0
          ? `missing: ${f.gaps.join('; ')}`
          : f.switches.length > 0
            ? `supported with ${f.switches.join(', ')}`
            : 'supported';
      out.push(`| ${f.feature} | ${verdict.replace(/\|/g, '\\|')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
