import { loadDecryptionKey, loadEncryptionPublicKey } from '../enc-keys.js';
import { SIGNING_ALGS } from '../enums.js';
import type { BffConfig, SigningKey } from '../types.js';
import type { RuleContext } from './context.js';

/**
 * Signed and optionally encrypted request objects (https://www.rfc-editor.org/rfc/rfc9101): the
 * signing alg must be allowed and match the client's key; encryption needs JAR; the IdP's key is pinned or
 * taken from its JWKS.
 * The alg allowlist itself is validated by its declaration even while JAR is off (`none` is never
 * acceptable, https://www.rfc-editor.org/rfc/rfc8725#section-3.1).
 */
export async function jarSettings(
  ctx: RuleContext,
  signingKey: SigningKey | undefined,
): Promise<BffConfig['jar']> {
  const v = ctx.values;
  const signingAlg = v.MS_BFF_JAR_SIGNING_ALG ?? signingKey?.alg ?? 'PS256';
  const algsAllowed = v.MS_BFF_JAR_ALGS_ALLOWED;
  if (v.MS_BFF_JAR_ENABLED) {
    if (!signingKey)
      ctx.problem('BFF_JWT_SIGNING_KEY', 'is required to sign request objects (MS_BFF_JAR_ENABLED=true)');
    else if (signingKey.alg !== signingAlg) {
      ctx.problem(
        'MS_BFF_JAR_SIGNING_ALG',
        `${signingAlg} does not match the ${signingKey.alg} key in BFF_JWT_SIGNING_KEY`,
      );
    }
    if (!algsAllowed.includes(signingAlg)) {
      ctx.problem('MS_BFF_JAR_SIGNING_ALG', `${signingAlg} is not in MS_BFF_JAR_ALGS_ALLOWED`);
    }
  }
  let encryption: BffConfig['jar']['encryption'];
  const alg = v.MS_BFF_JAR_ENC_ALG;
  if (alg !== undefined) {
    if (!v.MS_BFF_JAR_ENABLED)
      ctx.problem('MS_BFF_JAR_ENC_ALG', 'encrypting request objects needs MS_BFF_JAR_ENABLED=true');
    // Without a pin the IdP's current `use: enc` key comes from its JWKS at each login, so an IdP
    // key rotation does not break logins (https://www.rfc-editor.org/rfc/rfc9101#section-6.1).
    if (v.BFF_JAR_ENC_KEY === undefined) encryption = { alg, enc: v.MS_BFF_JAR_ENC_METHOD, key: undefined };
    else {
      const loaded = await loadEncryptionPublicKey(v.BFF_JAR_ENC_KEY, alg);
      if (typeof loaded === 'string') ctx.problem('BFF_JAR_ENC_KEY', loaded);
      else encryption = { alg, enc: v.MS_BFF_JAR_ENC_METHOD, key: loaded };
    }
  }
  return { enabled: v.MS_BFF_JAR_ENABLED, signingAlg, algsAllowed, encryption };
}

/**
 * JWT-secured authorization responses (https://openid.net/specs/oauth-v2-jarm-final.html): with
 * encryption required, our decryption key must be given and fit the alg.
 */
export async function jarmSettings(ctx: RuleContext): Promise<BffConfig['jarm']> {
  const v = ctx.values;
  // With JARM the mode is MS_BFF_JARM_MODE: a plain form_post next to it would be ambiguous.
  if (v.MS_BFF_JARM_ENABLED && v.MS_BFF_RESPONSE_MODE !== 'query')
    ctx.problem(
      'MS_BFF_RESPONSE_MODE',
      'is for plain responses; with JARM set MS_BFF_JARM_MODE (e.g. form_post.jwt)',
    );
  let encryption: BffConfig['jarm']['encryption'];
  const alg = v.MS_BFF_JARM_ENC_ALG;
  if (alg !== undefined) {
    if (!v.MS_BFF_JARM_ENABLED)
      ctx.problem('MS_BFF_JARM_ENC_ALG', 'encrypted JARM needs MS_BFF_JARM_ENABLED=true');
    if (v.BFF_JARM_PRIV_KEY === undefined)
      ctx.problem('BFF_JARM_PRIV_KEY', 'is required when MS_BFF_JARM_ENC_ALG is set');
    else {
      const loaded = await loadDecryptionKey(v.BFF_JARM_PRIV_KEY, alg);
      if (typeof loaded === 'string') ctx.problem('BFF_JARM_PRIV_KEY', loaded);
      else encryption = { alg, enc: v.MS_BFF_JARM_ENC_ENC, key: loaded };
    }
  }
  return {
    enabled: v.MS_BFF_JARM_ENABLED,
    mode: v.MS_BFF_JARM_MODE,
    // Signing algs accepted on JARM responses
    // (https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.4.1); EdDSA is
    // offered for our own signatures only (SIGNING_ALGS), not yet accepted from the IdP here.
    algsAllowed: SIGNING_ALGS.filter((a) => a !== 'EdDSA'),
    encryption,
  };
}
