import type { ClientAssertionAud, IdpPreset } from '../enums.js';
import { PRESETS } from '../presets.js';
import type { Env } from '../read.js';
import type { RuleContext } from './context.js';

/** The JARM lifetime https://openid.net/specs/oauth-v2-jarm-final.html#section-2.1 recommends. */
export const DEFAULT_JARM_MAX_LIFETIME_SEC = 600;

export interface InteropConfig {
  readonly preset: IdpPreset | undefined;
  readonly clientAssertionAud: ClientAssertionAud;
  readonly assumeIssParameter: boolean;
  readonly jarmMaxLifetimeSec: number;
  readonly logoutTokenRequireExp: boolean;
  /** The switches that are on, by variable name, for logs and `fapi-bff check`. */
  readonly active: readonly string[];
}

/**
 * MS_BFF_IDP_PRESET: the preset's settings go under everything the operator set (file or
 * environment), so a preset only fills in what is absent.
 */
export function applyPreset(env: Env): Env {
  const name = env.MS_BFF_IDP_PRESET?.trim();
  if (!name || !Object.hasOwn(PRESETS, name)) return env; // an unknown name is reported by its parser
  const merged: Record<string, string | undefined> = { ...PRESETS[name as IdpPreset].settings };
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value.trim() !== '') merged[key] = value;
  }
  return merged;
}

/**
 * Interoperability switches: each tolerates one known deviation of a real IdP. Each is off by
 * default and logged loudly when on; one that weakens a FAPI 2.0 (or OpenID) requirement is refused
 * in production unless MS_BFF_ACKNOWLEDGE_WEAKENED names it: a weakening is accepted by name, never
 * by accident, and never by a preset alone.
 */
export function interopSettings(ctx: RuleContext): InteropConfig {
  const v = ctx.values;
  const preset = v.MS_BFF_IDP_PRESET;
  const weakened: [string, string][] = [];
  if (v.MS_BFF_CLIENT_ASSERTION_AUD === 'endpoint') {
    weakened.push([
      'MS_BFF_CLIENT_ASSERTION_AUD',
      'client assertions carry the endpoint URL as aud instead of the issuer (FAPI 2.0 Security Profile §5.3.2.1)',
    ]);
  }
  if (v.MS_BFF_JARM_MAX_LIFETIME_SECONDS > DEFAULT_JARM_MAX_LIFETIME_SEC) {
    weakened.push([
      'MS_BFF_JARM_MAX_LIFETIME_SECONDS',
      `JARM responses are accepted for up to ${v.MS_BFF_JARM_MAX_LIFETIME_SECONDS} s (JARM §2.1 recommends 600)`,
    ]);
  }
  if (!v.MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP) {
    weakened.push([
      'MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP',
      'back-channel logout tokens without exp are accepted (OIDC Back-Channel Logout 1.0 §2.4 requires it)',
    ]);
  }
  const active = weakened.map(([name]) => name);
  const from = preset ? ` (MS_BFF_IDP_PRESET=${preset})` : '';
  if (v.MS_BFF_ASSUME_ISS_PARAMETER) {
    active.push('MS_BFF_ASSUME_ISS_PARAMETER');
    // Not a weakening: the callback requires and compares iss in every response regardless.
    ctx.warn(
      `INTEROP MS_BFF_ASSUME_ISS_PARAMETER=true${from}: starting although the IdP does not advertise RFC 9207; iss is still required in every authorization response`,
    );
  }
  const acknowledged = new Set(v.MS_BFF_ACKNOWLEDGE_WEAKENED);
  for (const name of acknowledged) {
    if (!active.includes(name) || name === 'MS_BFF_ASSUME_ISS_PARAMETER') {
      ctx.warn(
        `MS_BFF_ACKNOWLEDGE_WEAKENED names ${name}, which weakens nothing here (stale or misspelled?)`,
      );
    }
  }
  for (const [name, what] of weakened) {
    if (ctx.production && !acknowledged.has(name)) {
      ctx.problem(
        name,
        `weakens the FAPI 2.0 profile (${what})${from}; refused in production unless MS_BFF_ACKNOWLEDGE_WEAKENED names ${name}`,
      );
    } else {
      ctx.warn(
        `INTEROP ${name}${from}: ${what}${ctx.production ? '; acknowledged in MS_BFF_ACKNOWLEDGE_WEAKENED' : ''}`,
      );
    }
  }
  return {
    preset,
    clientAssertionAud: v.MS_BFF_CLIENT_ASSERTION_AUD,
    assumeIssParameter: v.MS_BFF_ASSUME_ISS_PARAMETER,
    jarmMaxLifetimeSec: v.MS_BFF_JARM_MAX_LIFETIME_SECONDS,
    logoutTokenRequireExp: v.MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP,
    active,
  };
}
