/**
 * The development IdP driven by openid-client v6 directly, with no BFF in between: tests of the
 * IdP itself and of what it issues.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import * as client from 'openid-client';
import { type DevIdp, type DevIdpOptions, startDevIdp } from '../../src/dev/idp.js';

/**
 * The development IdP with one client registered for private_key_jwt (RFC 7523 §2.2,
 * https://www.rfc-editor.org/rfc/rfc7523#section-2.2) with a fresh key signing with `alg`
 * (`metadata` over the basics), and openid-client's configuration of that client.
 */
export async function startDevIdpWithClient(opts: {
  clientId: string;
  redirectUri: string;
  alg?: 'ES256' | 'PS256';
  metadata?: Record<string, unknown>;
  idp?: Omit<DevIdpOptions, 'clients'>;
}): Promise<{ idp: DevIdp; config: client.Configuration }> {
  const alg = opts.alg ?? 'ES256';
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const idp = await startDevIdp({
    ...opts.idp,
    clients: [
      {
        client_id: opts.clientId,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: alg,
        jwks: { keys: [{ ...publicJwk, kid, alg, use: 'sig' }] },
        redirect_uris: [opts.redirectUri],
        ...opts.metadata,
      },
    ],
  });
  try {
    const config = await client.discovery(
      new URL(idp.issuer),
      opts.clientId,
      { id_token_signed_response_alg: 'PS256' },
      client.PrivateKeyJwt({ key: privateKey, kid }),
      { execute: [client.allowInsecureRequests], timeout: 5 },
    );
    return { idp, config };
  } catch (err) {
    await idp.close();
    throw err;
  }
}
