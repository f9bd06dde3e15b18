import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import { IDP_PRESETS, type IdpPreset } from '../config/enums.js';
import { loadConfig } from '../config/load.js';
import { PRESETS } from '../config/presets.js';
import type { IdpMetadata } from '../oauth/capabilities.js';
import { command as checkCommand } from './check.js';
import type { MatrixRow } from './compliance.js';

/**
 * What each preset's IdP supports, as `fapi-bff check` sees it: every feature is a configuration (the
 * preset plus that feature's switch, in the production profile with the preset's weakening switches
 * acknowledged) checked by the real `check` command against the IdP's published discovery document
 * (docs/interop/discovery/<preset>.json, each with its source in `_fixture`), served from a loopback
 * HTTP server as the issuer: every URL in it points at that server, every other member is served
 * as published. The README table and docs/interop/presets.md are generated from these results
 * (`npm run docs`, drift-tested).
 */

export const DISCOVERY_DIR = 'docs/interop/discovery';

export interface Fixture {
  readonly source: string;
  /** vendor documentation, vendor repository recording, third-party capture, or captured here. */
  readonly origin?: string;
  /** Only part of the published document could be read: absent members may exist in the real one. */
  readonly reconstructed: boolean;
  readonly notes: string;
}

export interface FeatureResult {
  readonly feature: string;
  /** Gaps `fapi-bff check` reports for this feature (beyond the baseline's for the others). */
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

export type FixtureDocument = IdpMetadata & Record<string, unknown> & { _fixture: Fixture };

export function readFixture(preset: IdpPreset): FixtureDocument | undefined {
  try {
    return JSON.parse(readFileSync(`${DISCOVERY_DIR}/${preset}.json`, 'utf8')) as FixtureDocument;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The document as the loopback issuer at `origin` serves it: every http(s) URL (endpoints, aliases)
 * moved to `origin` with its path kept, the issuer likewise (or `origin` + `/<preset>` when the
 * published part names none), `_fixture` dropped; every other member exactly as published.
 */
export function servedDocument(
  doc: Record<string, unknown>,
  origin: string,
  fallbackPath: string,
): Record<string, unknown> {
  const move = (value: unknown): unknown => {
    if (typeof value === 'string' && /^https?:\/\//i.test(value)) {
      const url = new URL(value);
      return `${origin}${url.pathname}${url.search}`;
    }
    if (Array.isArray(value)) return value.map(move);
    if (value !== null && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, move(v)]));
    return value;
  };
  const served = Object.fromEntries(
    Object.entries(doc)
      .filter(([key]) => key !== '_fixture')
      .map(([key, value]) => [key, move(value)]),
  );
  if (typeof served.issuer !== 'string') served.issuer = `${origin}${fallbackPath}`;
  return served;
}

/** Serves `document` at every `/.well-known/openid-configuration` on 127.0.0.1 (port chosen by the OS). */
async function serveDiscovery(
  build: (origin: string) => Record<string, unknown>,
): Promise<{ issuer: string; close: () => Promise<void> }> {
  let body = '';
  const server = createServer((req, res) => {
    const ok = req.method === 'GET' && (req.url ?? '').endsWith('/.well-known/openid-configuration');
    res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' });
    res.end(ok ? body : '{"error":"not_found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const document = build(origin);
  body = JSON.stringify(document);
  return {
    issuer: document.issuer as string,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Runs `fapi-bff check --format json` in this process with `env`; its exit status and rows. */
export async function runCheck(
  env: Record<string, string>,
): Promise<{ code: number | undefined; rows: MatrixRow[]; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await checkCommand.run({
    args: ['--format', 'json'],
    env,
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  const rows = stdout ? (JSON.parse(stdout) as { rows: MatrixRow[] }).rows : [];
  return { code, rows, stderr };
}

/** The environment an operator of `preset` would set for `feature`, in the production profile. */
export async function presetEnv(
  preset: IdpPreset,
  issuer: string,
  { applyPreset = true }: { applyPreset?: boolean } = {},
): Promise<Record<string, string>> {
  const settings = PRESETS[preset].settings;
  const alg = applyPreset && settings.BFF_JWT_SIGNING_ALG === 'PS256' ? 'PS256' : 'ES256';
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const key = { ...(await exportJWK(privateKey)), kid: 'matrix', alg, use: 'sig' };
  const weakening = Object.keys(settings).filter((v) => WEAKENING.includes(v));
  return {
    OIDC_ISSUER: issuer,
    OIDC_CLIENT_ID: 'bff',
    OIDC_CLIENT_SECRET: 'secret',
    BFF_JWT_SIGNING_KEY: JSON.stringify(key),
    MS_BFF_PUBLIC_URL: 'https://app.example.com',
    MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
    MS_BFF_PROFILE: 'production',
    // Only the loopback server that stands in for the IdP is reached over plain HTTP.
    MS_BFF_ALLOW_HTTP_HOSTS: '127.0.0.1',
    ...(applyPreset
      ? {
          MS_BFF_IDP_PRESET: preset,
          ...(weakening.length ? { MS_BFF_ACKNOWLEDGE_WEAKENED: weakening.join(',') } : {}),
        }
      : {}),
  };
}

/** The switches that weaken the profile (refused in production unless acknowledged). */
const WEAKENING = [
  'MS_BFF_CLIENT_ASSERTION_AUD',
  'MS_BFF_JARM_MAX_LIFETIME_SECONDS',
  'MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP',
];

/**
 * `fapi-bff check`'s verdict on `doc` for every feature, with `preset` applied, the document served
 * from a loopback issuer. A feature's gaps are the details of the rows the check reports missing.
 */
export async function evaluatePreset(
  preset: IdpPreset,
  doc: Record<string, unknown> | undefined,
  opts: { applyPreset?: boolean } = {},
): Promise<FeatureResult[]> {
  if (!doc) return [];
  const idp = await serveDiscovery((origin) => servedDocument(doc, origin, `/${preset}`));
  try {
    const base = await presetEnv(preset, idp.issuer, opts);
    const results: FeatureResult[] = [];
    let baseline: string[] = [];
    for (const feature of FEATURES) {
      const env = { ...base, ...feature.env };
      const { code, rows, stderr } = await runCheck(env);
      if (code === undefined || rows.length === 0)
        throw new Error(`fapi-bff check gave no report for ${preset}/${feature.name}: ${stderr}`);
      const gaps = rows.filter((r) => r.status === 'missing').flatMap((r) => r.detail);
      if (code !== (gaps.length === 0 ? 0 : 1))
        throw new Error(`fapi-bff check exit ${code} disagrees with its rows for ${preset}/${feature.name}`);
      if (feature === FEATURES[0]) baseline = gaps;
      const own = feature === FEATURES[0] ? gaps : gaps.filter((g) => !baseline.includes(g));
      // The switches this feature leans on: those that are on and apply to it.
      const config = await loadConfig(env);
      const switches = config.interop.active.filter((s) =>
        relevant(s, config.oidc.tokenAuthMethod, feature.name),
      );
      results.push({ feature: feature.name, gaps: own, switches: own.length === 0 ? switches : [] });
    }
    return results;
  } finally {
    await idp.close();
  }
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
      : `${r.fixture.origin ?? 'vendor documentation'}${r.fixture.reconstructed ? ' (partial)' : ''}`;
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
    "`fapi-bff check` (whose capability checks the startup check shares) says about the IdP's published discovery",
    'document with the preset applied, in the production profile, the document served from a loopback issuer (its',
    'URLs moved there, every other member as published); run `fapi-bff check` against your live IdP.',
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
    for (const note of preset.notes) out.push(`- ${note}`);
    if (preset.notes.length > 0) out.push('');
    out.push(`Documentation: ${preset.documentation.join(', ')}`, '');
    if (!r.fixture) {
      out.push(
        'Discovery document: none committed. No published discovery document of this IdP was found in the documentation available to this project; run `fapi-bff check` against your instance.',
        '',
      );
      continue;
    }
    out.push(
      `Discovery document: [\`${DISCOVERY_DIR}/${r.preset}.json\`](discovery/${r.preset}.json), from ${r.fixture.source}${r.fixture.reconstructed ? ' (partial: see its `_fixture.notes`)' : ''}.`,
      '',
      `Origin: ${r.fixture.origin ?? 'vendor documentation'}. ${r.fixture.notes}`,
      '',
      '| feature | `fapi-bff check` |',
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
