import * as oauth from 'oauth4webapi';

const AS = { issuer: 'https://challenge.invalid' } as const;
const CLIENT = { client_id: 'challenge' } as const;

/**
 * True when a resource server's 401 asks for a DPoP nonce (RFC 9449 §9: `WWW-Authenticate: DPoP
 * error="use_dpop_nonce"`, the scheme case-insensitive, possibly among other challenges).
 * oauth4webapi's RFC 9110 §11.6.1 challenge parser is not exported; its user-info response check runs
 * it first and throws a WWWAuthenticateChallengeError that isDPoPNonceError understands. That keeps
 * HTTP header parsing in the library.
 */
export async function isUseDpopNonceChallenge(
  wwwAuthenticate: string | string[] | undefined,
): Promise<boolean> {
  if (wwwAuthenticate === undefined) return false;
  const headers = new Headers();
  for (const value of Array.isArray(wwwAuthenticate) ? wwwAuthenticate : [wwwAuthenticate]) {
    headers.append('www-authenticate', value);
  }
  try {
    await oauth.processUserInfoResponse(
      AS,
      CLIENT,
      oauth.skipSubjectCheck,
      new Response(null, { status: 401, headers }),
    );
  } catch (err) {
    return oauth.isDPoPNonceError(err);
  }
  return false;
}
