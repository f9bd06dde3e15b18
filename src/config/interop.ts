import type { VariableSpec } from './schema.js';
import { PRESET_NAMES, PRESETS, type PresetName } from './presets.js';

/**
 * Interoperability switches: each tolerates one known deviation of a real IdP from the specifications
 * the BFF follows. Every switch is off by default, logged loudly when on, and, where it weakens a
 * FAPI 2.0 (or OpenID) requirement, refused in the production profile unless named in
 * MS_BFF_ACKNOWLEDGE_WEAKENED: an operator accepts each weakening by name, never by accident.
 */
export const INTEROP_VARIABLES = [
  {
    name: 'MS_BFF_IDP_PRESET',
    description:
      'Defaults for a known IdP (docs/interop/presets.md): sets only interop switches and defaults; every variable set explicitly wins, and weakening switches still need MS_BFF_ACKNOWLEDGE_WEAKENED in production.',
    values: PRESET_NAMES,
  },
  {
    name: 'MS_BFF_CLIENT_ASSERTION_AUD',
    description:
      'aud of private_key_jwt client assertions: the issuer (FAPI 2.0 Security Profile §5.3.2.1) or the URL of the endpoint called (RFC 7523 §3 style, for IdPs that accept nothing else). endpoint weakens FAPI 2.0: acknowledge it in production.',
    values: ['issuer', 'endpoint'],
    default: 'issuer',
  },
  {
    name: 'MS_BFF_ASSUME_ISS_PARAMETER',
    description:
      'Start although discovery does not advertise authorization_response_iss_parameter_supported (RFC 9207 §3); the iss parameter is still required and compared in every authorization response.',
    values: ['true', 'false'],
    default: 'false',
  },
  {
    name: 'MS_BFF_JARM_MAX_LIFETIME_SECONDS',
    description:
      'Longest accepted JARM response lifetime (exp - iat). JARM §2.1 recommends 10 minutes; above 600 weakens the profile: acknowledge it in production.',
    default: '600',
  },
  {
    name: 'MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP',
    description:
      'Require exp in back-channel logout tokens (OIDC Back-Channel Logout 1.0 §2.4). false accepts tokens without exp, still bounded by iat age and single use; acknowledge it in production.',
    values: ['true', 'false'],
    default: 'true',
  },
  {
    name: 'MS_BFF_ACKNOWLEDGE_WEAKENED',
    description:
      'Comma-separated names of the interop switches above that weaken the profile and are accepted in production, e.g. MS_BFF_CLIENT_ASSERTION_AUD,MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP.',
  },
] as const satisfies readonly VariableSpec[];

/** The JARM lifetime JARM §2.1 recommends and the BFF enforces by default. */
export const DEFAULT_JARM_MAX_LIFETIME_SEC = 600;

export interface InteropConfig {
  readonly preset: PresetName | undefined;
  readonly clientAssertionAud: 'issuer' | 'endpoint';
  readonly assumeIssParameter: boolean;
  readonly jarmMaxLifetimeSec: number;
  readonly logoutTokenRequireExp: boolean;
  /** The switches that are on, by variable name, for logs and `fapi-bff check`. */
  readonly active: readonly string[];
}

/**
 * The preset's values go under everything the operator set (file or environment): a preset only
 * fills in what is absent. Returns the merged environment and the preset's name.
 */
export function applyPreset(
  env: Readonly<Record<string, string | undefined>>,
  problem: (variable: string, message: string) => void,
): Readonly<Record<string, string | undefined>> {
  const name = env.MS_BFF_IDP_PRESET?.trim();
  if (!name) return env;
  if (!(PRESET_NAMES as readonly string[]).includes(name)) {
    problem('MS_BFF_IDP_PRESET', `must be one of ${PRESET_NAMES.join(', ')} (got "${name}")`);
    return env;
  }
  const merged: Record<string, string | undefined> = { ...PRESETS[name as PresetName].settings };
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value.trim() !== '') merged[key] = value;
  }
  return merged;
}

interface Readers {
  get(name: string): string | undefined;
  bool(name: string, fallback: boolean): boolean;
  int(name: string, fallback: number, min: number, max: number): number;
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T;
  problem(variable: string, message: string): void;
  warn(message: string): void;
}

/** Parse the switches; in production, refuse each weakening one that is not acknowledged by name. */
export function parseInterop(r: Readers, production: boolean): InteropConfig {
  const presetRaw = r.get('MS_BFF_IDP_PRESET');
  const preset = (PRESET_NAMES as readonly string[]).includes(presetRaw ?? '')
    ? (presetRaw as PresetName)
    : undefined;
  const clientAssertionAud = r.oneOf(
    'MS_BFF_CLIENT_ASSERTION_AUD',
    ['issuer', 'endpoint'] as const,
    'issuer',
  );
  const assumeIssParameter = r.bool('MS_BFF_ASSUME_ISS_PARAMETER', false);
  const jarmMaxLifetimeSec = r.int(
    'MS_BFF_JARM_MAX_LIFETIME_SECONDS',
    DEFAULT_JARM_MAX_LIFETIME_SEC,
    10,
    86_400,
  );
  const logoutTokenRequireExp = r.bool('MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP', true);

  const weakened: [string, string][] = [];
  if (clientAssertionAud === 'endpoint') {
    weakened.push([
      'MS_BFF_CLIENT_ASSERTION_AUD',
      'client assertions carry the endpoint URL as aud instead of the issuer (FAPI 2.0 Security Profile §5.3.2.1)',
    ]);
  }
  if (jarmMaxLifetimeSec > DEFAULT_JARM_MAX_LIFETIME_SEC) {
    weakened.push([
      'MS_BFF_JARM_MAX_LIFETIME_SECONDS',
      `JARM responses are accepted for up to ${jarmMaxLifetimeSec} s (JARM §2.1 recommends 600)`,
    ]);
  }
  if (!logoutTokenRequireExp) {
    weakened.push([
      'MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP',
      'back-channel logout tokens without exp are accepted (OIDC Back-Channel Logout 1.0 §2.4 requires it)',
    ]);
  }
  const active = weakened.map(([name]) => name);
  if (assumeIssParameter) {
    active.push('MS_BFF_ASSUME_ISS_PARAMETER');
    r.warn(
      'INTEROP MS_BFF_ASSUME_ISS_PARAMETER=true: starting although the IdP does not advertise RFC 9207; iss is still required in every authorization response',
    );
  }

  const acknowledged = new Set(
    (r.get('MS_BFF_ACKNOWLEDGE_WEAKENED') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  for (const name of acknowledged) {
    if (!weakened.some(([w]) => w === name)) {
      r.warn(`MS_BFF_ACKNOWLEDGE_WEAKENED names ${name}, which weakens nothing here (stale or misspelled?)`);
    }
  }
  for (const [name, what] of weakened) {
    if (production && !acknowledged.has(name)) {
      r.problem(
        name,
        `weakens the FAPI 2.0 profile (${what}); refused in production unless MS_BFF_ACKNOWLEDGE_WEAKENED names ${name}`,
      );
    } else {
      r.warn(
        `INTEROP ${name}: ${what}${production ? ' — acknowledged in MS_BFF_ACKNOWLEDGE_WEAKENED' : ''}${preset ? ` (preset ${preset} may have set it)` : ''}`,
      );
    }
  }
  return {
    preset,
    clientAssertionAud,
    assumeIssParameter,
    jarmMaxLifetimeSec,
    logoutTokenRequireExp,
    active,
  };
}
