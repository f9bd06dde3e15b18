import { type RegistrationRecord, readRegistrationFile } from '../../registration/file.js';
import type { RuleContext } from './context.js';

/**
 * OIDC_CLIENT_REGISTRATION_FILE, written by `fapi-bff register` (RFC 7591): the client id (and
 * secret, if the IdP issued one) come from it instead of OIDC_CLIENT_ID / OIDC_CLIENT_SECRET. The
 * file must belong to this issuer, and say the same client id when both are set.
 */
export function registrationSettings(ctx: RuleContext): (RegistrationRecord & { file: string }) | undefined {
  const v = ctx.values;
  const file = v.OIDC_CLIENT_REGISTRATION_FILE;
  if (file === undefined) return undefined;
  const record = readRegistrationFile(file);
  if (typeof record === 'string') {
    ctx.problem('OIDC_CLIENT_REGISTRATION_FILE', record);
    return undefined;
  }
  const issuer = v.OIDC_ISSUER?.href.replace(/\/$/, '');
  if (issuer && record.issuer.replace(/\/$/, '') !== issuer) {
    ctx.problem(
      'OIDC_CLIENT_REGISTRATION_FILE',
      `the client was registered at ${record.issuer}, not at OIDC_ISSUER ${issuer}`,
    );
  }
  if (v.OIDC_CLIENT_ID !== undefined && v.OIDC_CLIENT_ID !== record.client_id) {
    ctx.problem(
      'OIDC_CLIENT_ID',
      `says ${v.OIDC_CLIENT_ID} but OIDC_CLIENT_REGISTRATION_FILE registers ${record.client_id}; set one`,
    );
  }
  return { ...record, file };
}
