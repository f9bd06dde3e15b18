/**
 * The `key.rotated` audit event from a running BFF: its signing key set is a directory holding an
 * active and a newer key; when the newer key's pre-publish window ends, one audit line names the new
 * kid, its thumbprint and the previous kid, with no key material; a reload that removes the active
 * key (the operator's SIGHUP) is reported the same way.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { clientMetadata, freePort, LogSink, type RunningBff, startBff } from '../helpers/bff-harness.js';

async function sigKey(
  kid: string,
  iat: number,
): Promise<{ priv: JWK & { iat: number }; pub: JWK; thumbprint: string }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const pub = { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'ES256' };
  return {
    priv: { ...(await exportJWK(privateKey)), kid, use: 'sig', alg: 'ES256', iat },
    pub,
    thumbprint: await calculateJwkThumbprint(pub, 'sha256'),
  };
}

describe('key.rotated audit event', () => {
  let dir: string;
  let idp: DevIdp;
  let bff: RunningBff;
  const logs = new LogSink();
  let oldKey: Awaited<ReturnType<typeof sigKey>>;
  let newKey: Awaited<ReturnType<typeof sigKey>>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fapi-bff-key-audit-'));
    oldKey = await sigKey('old', 100);
    newKey = await sigKey('new', 200);
    writeFileSync(join(dir, 'old.json'), JSON.stringify(oldKey.priv), { mode: 0o600 });
    writeFileSync(join(dir, 'new.json'), JSON.stringify(newKey.priv), { mode: 0o600 });
    const port = await freePort();
    const meta = clientMetadata('bff-key-audit', `http://127.0.0.1:${port}`, {
      privateJwk: oldKey.priv,
      publicJwk: oldKey.pub,
    });
    idp = await startDevIdp({ clients: [{ ...meta, jwks: { keys: [oldKey.pub, newKey.pub] } }] });
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'bff-key-audit',
      logs,
      env: { BFF_JWT_SIGNING_KEY: dir, MS_BFF_KEY_PREPUBLISH_SECONDS: '1' },
    });
  });
  after(async () => {
    await bff?.close();
    await idp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is emitted when the next key becomes active and when a reload removes the active key', async () => {
    assert.deepEqual(logs.audit('key.rotated'), [], 'the key set at start is not a rotation');
    for (let i = 0; i < 50 && logs.audit('key.rotated').length === 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    const [first, ...more] = logs.audit('key.rotated');
    assert.ok(first, 'key.rotated within 5 s of the pre-publish window (1 s)');
    assert.deepEqual(more, [], 'once');
    assert.equal(first.use, 'sig');
    assert.equal(first.kid, 'new');
    assert.equal(first.previous_kid, 'old');
    assert.equal(first.thumbprint, newKey.thumbprint);
    assert.equal(first.frontend, 'default');
    assert.equal(bff.services.idp.keys.signingKey()?.kid, 'new');

    // The operator takes the new key out again (SIGHUP reloads): the old one signs, and says so.
    unlinkSync(join(dir, 'new.json'));
    assert.equal(await bff.services.idp.keys.reload(), undefined);
    const second = logs.audit('key.rotated')[1];
    assert.ok(second);
    assert.deepEqual(
      [second.use, second.kid, second.previous_kid, second.thumbprint],
      ['sig', 'old', 'new', oldKey.thumbprint],
    );

    const all = logs.lines.join('\n');
    for (const k of [oldKey.priv, newKey.priv])
      assert.ok(!all.includes(String(k.d)), 'no private key material');
    assert.match(await bff.metrics.render(), /bff_audit_events_total\{event="key.rotated"\} 2\b/);
  });
});
