import { BffError } from '../errors.js';
import { isAcrValues } from '../oauth/login-parameters.js';
import { parseChallenges } from '../oauth/www-authenticate.js';

/**
 * RFC 9470 §3 (https://www.rfc-editor.org/rfc/rfc9470#section-3): a resource server that wants a
 * stronger or more recent authentication answers 401 with `error="insufficient_user_authentication"`
 * and the `acr_values` and/or `max_age` it needs. The SPA cannot see that challenge's meaning in a
 * proxied 401, so it becomes BFF_STEP_UP_REQUIRED with what to ask for and the login URL that asks
 * for it (through /auth/login's allowlist, so the frontend still decides what may be passed).
 * Returns undefined for any other response.
 */
export function stepUpRequired(
  status: number,
  wwwAuthenticate: string | readonly string[] | undefined,
  loginPath: string,
): BffError | undefined {
  if (status !== 401 || wwwAuthenticate === undefined) return undefined;
  const challenge = parseChallenges(wwwAuthenticate).find(
    (c) =>
      (c.scheme === 'bearer' || c.scheme === 'dpop') && c.params.error === 'insufficient_user_authentication',
  );
  if (!challenge) return undefined;
  const login = new URLSearchParams();
  const extensions: Record<string, string | number> = {};
  const acr = challenge.params.acr_values;
  // Same token syntax /auth/login accepts; anything else is not repeated to the browser.
  if (acr !== undefined && isAcrValues(acr)) {
    extensions.acr_values = acr;
    login.set('acr_values', acr);
  }
  const maxAge = challenge.params.max_age;
  if (maxAge !== undefined && /^\d{1,10}$/.test(maxAge)) {
    extensions.max_age = Number(maxAge);
    login.set('max_age', maxAge);
  }
  extensions.login = `${loginPath}?${login.toString()}`;
  return new BffError('BFF_STEP_UP_REQUIRED', {
    reason: 'insufficient_user_authentication',
    detail: 'Sign in again as asked (login), then retry the call.',
    extensions,
  });
}
