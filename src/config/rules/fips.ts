import { getFips } from 'node:crypto';
import { fipsAlgProblem, fipsJwkProblem, peekJwk } from '../../fips/policy.js';
import type { RuleContext } from './context.js';

/**
 * FIPS mode (FIPS_MODE=true): Node must run on a FIPS provider, and every key and alg we are given
 * must be approved. Keys are checked before they are imported, so an operator reads "EdDSA is not
 * FIPS-approved" rather than an OpenSSL error. Returns the variables refused here, so other rules
 * do not report them a second time.
 */
export function fipsPolicy(ctx: RuleContext): ReadonlySet<string> {
  const v = ctx.values;
  const refused = new Set<string>();
  if (!v.FIPS_MODE) return refused;
  if (getFips() !== 1) {
    ctx.problem(
      'FIPS_MODE',
      `is true but Node.js ${process.version} (OpenSSL ${process.versions.openssl}) is not running with a FIPS provider: start node with --openssl-config=<config activating the fips and base providers with default_properties = fips=yes> and OPENSSL_MODULES=<directory of fips.so> (README "FIPS mode"; scripts/fips-provider.sh builds a test provider)`,
    );
  }
  const idTokenProblem = fipsAlgProblem(v.MS_BFF_ID_TOKEN_ALG);
  if (idTokenProblem) {
    ctx.problem('MS_BFF_ID_TOKEN_ALG', idTokenProblem);
    refused.add('MS_BFF_ID_TOKEN_ALG');
  }
  // DPoP session keys: EdDSA (Ed25519) is offered for IdPs that accept it, never in FIPS mode.
  const dpopProblem = fipsAlgProblem(v.MS_BFF_DPOP_ALG);
  if (dpopProblem) {
    ctx.problem('MS_BFF_DPOP_ALG', dpopProblem);
    refused.add('MS_BFF_DPOP_ALG');
  }
  // Our own signing alg (client assertions, request objects): EdDSA is never FIPS-approved.
  for (const name of ['BFF_JWT_SIGNING_ALG', 'MS_BFF_JAR_SIGNING_ALG'] as const) {
    const problem = v[name] === undefined ? undefined : fipsAlgProblem(v[name]);
    if (problem) {
      ctx.problem(name, problem);
      refused.add(name);
    }
  }
  for (const name of ['BFF_JWT_SIGNING_KEY', 'BFF_JARM_PRIV_KEY', 'BFF_JAR_ENC_KEY'] as const) {
    const text = v[name];
    if (text === undefined) continue;
    const keyProblem = peekJwk(text)
      .map((jwk) => fipsJwkProblem(jwk) ?? (jwk.alg ? fipsAlgProblem(jwk.alg) : undefined))
      .find((p) => p !== undefined);
    if (keyProblem) {
      ctx.problem(name, keyProblem);
      refused.add(name);
    }
  }
  return refused;
}
