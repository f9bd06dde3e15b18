import type { LoginParameter } from '../config/enums.js';
import { PROMPT_VALUES } from '../config/enums.js';
import { BffError } from '../errors.js';

/** What an SPA asked of a login, validated: passed to the IdP and checked again at the callback. */
export interface LoginRequestParameters {
  /** OIDC Core §3.1.2.1: space-separated ACR values, in order of preference. */
  readonly acrValues?: string | undefined;
  /** OIDC Core §3.1.2.1: seconds since the user last actively authenticated. */
  readonly maxAge?: number | undefined;
  readonly prompt?: string | undefined;
}

/** A space-separated list of tokens of visible ASCII without quotes or backslashes (RFC 6749 §3.3 style). */
const TOKEN_LIST = /^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/;
const MAX_AGE_LIMIT = 10 * 365 * 24 * 3600;

/** Space-separated ACR values as a login (or an RFC 9470 challenge asking for one) may carry them. */
export function isAcrValues(value: string): boolean {
  return value.length <= 512 && TOKEN_LIST.test(value);
}

function refuse(parameter: string, detail: string): BffError {
  return new BffError('BFF_LOGIN_INVALID_PARAMETER', { reason: parameter, detail });
}

/**
 * Validate the authorization parameters an SPA passed to /auth/login against the frontend's
 * allowlist (any other parameter stays under the BFF's control: scope, redirect_uri, response_mode…).
 * A parameter given twice, or not allowed, or malformed, is refused rather than dropped: the SPA
 * asked for a stronger login and must not silently get a weaker one.
 */
export function loginParameters(
  query: Readonly<Record<string, unknown>>,
  allowed: readonly LoginParameter[],
): LoginRequestParameters {
  const one = (name: LoginParameter): string | undefined => {
    const value = query[name];
    if (value === undefined) return undefined;
    if (!allowed.includes(name)) throw refuse(name, `${name} is not allowed for this application`);
    if (typeof value !== 'string') throw refuse(name, `${name} must be given once`);
    return value;
  };
  const acrValues = one('acr_values');
  if (acrValues !== undefined && !isAcrValues(acrValues)) {
    throw refuse('acr_values', 'acr_values must be space-separated values');
  }
  const rawMaxAge = one('max_age');
  let maxAge: number | undefined;
  if (rawMaxAge !== undefined) {
    maxAge = /^\d{1,10}$/.test(rawMaxAge) ? Number(rawMaxAge) : Number.NaN;
    if (!(maxAge >= 0 && maxAge <= MAX_AGE_LIMIT)) throw refuse('max_age', 'max_age must be whole seconds');
  }
  const prompt = one('prompt');
  if (prompt !== undefined) {
    const values = prompt.split(' ');
    if (
      values.some((v) => !(PROMPT_VALUES as readonly string[]).includes(v)) ||
      new Set(values).size !== values.length ||
      // OIDC Core §3.1.2.1: none together with any other value is an error.
      (values.includes('none') && values.length > 1)
    ) {
      throw refuse('prompt', `prompt must be space-separated values of ${PROMPT_VALUES.join(', ')}`);
    }
  }
  return { acrValues, maxAge, prompt };
}

/** The authorization request parameters for them (OIDC Core §3.1.2.1). */
export function authorizationParameters(p: LoginRequestParameters): Record<string, string> {
  const out: Record<string, string> = {};
  if (p.acrValues !== undefined) out.acr_values = p.acrValues;
  if (p.maxAge !== undefined) out.max_age = String(p.maxAge);
  if (p.prompt !== undefined) out.prompt = p.prompt;
  return out;
}

/**
 * The ID token must show what was asked for. `max_age` is checked by openid-client (`auth_time`
 * required and recent enough, OIDC Core §3.1.3.7-13); `acr_values` are voluntary at the IdP
 * (OIDC Core §5.5.1.1), so an ID token whose `acr` is not one of them is refused here: a step-up
 * that did not happen must not look like one (RFC 9470 §5).
 */
export function checkAuthenticationLevel(
  p: LoginRequestParameters,
  claims: Readonly<Record<string, unknown>>,
): void {
  if (p.acrValues === undefined) return;
  const acr = claims.acr;
  if (typeof acr !== 'string' || !p.acrValues.split(' ').includes(acr)) {
    throw new BffError('BFF_AUTHENTICATION_INSUFFICIENT', {
      reason: 'acr',
      detail: 'The identity provider did not authenticate you at the level this application asked for.',
    });
  }
}

/**
 * OIDC Core §3.1.2.6: the errors a `prompt=none` request ends with when the user would have to
 * interact. The SPA asked "is the user signed in?"; these answer "no", not "failure".
 */
export const SILENT_LOGIN_ERRORS: ReadonlySet<string> = new Set([
  'login_required',
  'interaction_required',
  'consent_required',
  'account_selection_required',
]);

/**
 * The RFC 8707 resources the user's token is exchanged for on this frontend's routes (`resource` on a
 * route that sends the user's token), in route order without repeats: the authorization request names
 * them (https://www.rfc-editor.org/rfc/rfc8707#section-2.1) so that the grant covers each one.
 */
export function userTokenResources(
  routes: Iterable<{ readonly token: string; readonly resource: string | undefined }>,
): string[] {
  const resources = new Set<string>();
  for (const route of routes) {
    if (route.resource !== undefined && route.token !== 'client' && route.token !== 'none')
      resources.add(route.resource);
  }
  return [...resources];
}
