/**
 * `fapi-bff check` with JAR encryption configured looks into the IdP's JWKS, not only its metadata:
 * the request object is encrypted to a key from there (RFC 9101 §6.1), so an IdP advertising the alg
 * without publishing a fitting `use: enc` key fails the gate before the first login does.
 */
import { strict as assert } from 'node:assert';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { presetEnv, readFixture, runCheck, servedDocument } from '../../src/cli/interop-matrix.js';

async function publicJwk(alg: 'ES256' | 'RSA-OAEP-256', use: 'sig' | 'enc', kid: string): Promise<JWK> {
  const { publicKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(publicKey)), kid, use, alg };
}

/** oidc-provider's published document plus RFC 9101 encryption metadata, and `keys` as its JWKS. */
async function idpWith(keys: JWK[]): Promise<{ issuer: string; close: () => Promise<void> }> {
  const doc = readFixture('oidc-provider');
  assert.ok(doc);
  let metadata: Record<string, unknown> = {};
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url?.endsWith('/.well-known/openid-configuration')) res.end(JSON.stringify(metadata));
    else if (req.url === '/jwks') res.end(JSON.stringify({ keys }));
    else res.writeHead(404).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  metadata = {
    ...servedDocument(doc, origin, '/'),
    request_object_encryption_alg_values_supported: ['RSA-OAEP-256'],
    request_object_encryption_enc_values_supported: ['A256GCM'],
  };
  return {
    issuer: metadata.issuer as string,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function check(keys: JWK[]) {
  const idp = await idpWith(keys);
  try {
    const env = {
      ...(await presetEnv('oidc-provider', idp.issuer)),
      MS_BFF_JAR_ENABLED: 'true',
      MS_BFF_JAR_ENC_ALG: 'RSA-OAEP-256',
    };
    const { code, rows } = await runCheck(env);
    return { code, row: rows.find((r) => r.requirement === 'JAR encryption') };
  } finally {
    await idp.close();
  }
}

describe('fapi-bff check: the IdP JWKS must hold the JAR encryption key', () => {
  it('the alg advertised but no encryption key in the JWKS: missing, and the gate fails', async () => {
    const { code, row } = await check([await publicJwk('ES256', 'sig', 'sig-1')]);
    assert.equal(row?.status, 'missing');
    assert.match(row?.detail.join() ?? '', /no key to encrypt request objects with RSA-OAEP-256/);
    assert.equal(code, 1);
  });

  it('an RSA key marked use: sig does not count', async () => {
    const rsaSig = { ...(await publicJwk('RSA-OAEP-256', 'sig', 'rsa-sig')), alg: undefined };
    const { row } = await check([await publicJwk('ES256', 'sig', 'sig-1'), rsaSig]);
    assert.equal(row?.status, 'missing');
  });

  it('a use: enc RSA key in the JWKS: enabled, and the gate passes', async () => {
    const { code, row } = await check([
      await publicJwk('ES256', 'sig', 'sig-1'),
      await publicJwk('RSA-OAEP-256', 'enc', 'enc-1'),
    ]);
    assert.deepEqual([row?.status, row?.detail], ['enabled', []]);
    assert.equal(code, 0);
  });
});
