import { exportJWK, generateKeyPair } from 'jose';
import { DEV_CLIENT_ID } from '../dev/dev-setup.js';

/**
 * The configuration of the development setup a running `npm start` uses, for commands run next to
 * it without OIDC_ISSUER. The embedded IdP listens on an ephemeral port, so its issuer is read from
 * the running BFF's /readyz; the client key is generated per run and never leaves that process, so
 * a stand-in key of the same alg (ES256) is used: the capability check needs the alg, not the key.
 */
export async function developmentEnv(
  env: Readonly<Record<string, string | undefined>>,
): Promise<{ env: Record<string, string | undefined>; note: string }> {
  const port = env.PORT?.trim() || '8080';
  const bffUrl = (env.MS_BFF_PUBLIC_URL?.trim() || `http://localhost:${port}`).replace(/\/$/, '');
  let issuer: string | undefined;
  try {
    const res = await fetch(`${bffUrl}/readyz`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { checks?: { idp?: { issuer?: unknown } } };
    if (typeof body.checks?.idp?.issuer === 'string') issuer = body.checks.idp.issuer;
  } catch {
    issuer = undefined;
  }
  if (!issuer) {
    throw new Error(
      `OIDC_ISSUER is not set and no development BFF answers at ${bffUrl}/readyz: start it with \`npm start\` (or set OIDC_ISSUER and the variables of your deployment)`,
    );
  }
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return {
    env: {
      OIDC_CLIENT_ID: DEV_CLIENT_ID,
      MS_BFF_PROFILE: 'development',
      MS_BFF_PUBLIC_URL: bffUrl,
      BFF_JWT_SIGNING_KEY: JSON.stringify({
        ...(await exportJWK(privateKey)),
        alg: 'ES256',
        kid: 'stand-in',
      }),
      ...env,
      OIDC_ISSUER: issuer,
    },
    note: `development setup: checking the embedded IdP ${issuer} of the BFF at ${bffUrl}`,
  };
}
