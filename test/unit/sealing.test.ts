import { strict as assert } from 'node:assert';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { SessionSealer } from '../../src/session/sealing.js';

const key = () => new Uint8Array(randomBytes(32));
const AAD = 'session-id-hash-1';

/** Replaces the character at `index` with a different base64url character. */
function flipChar(text: string, index: number): string {
  const c = text[index];
  const replacement = c === 'A' ? 'B' : 'A';
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

function withPart(sealed: string, part: number, value: string): string {
  const parts = sealed.split('.');
  parts[part] = value;
  return parts.join('.');
}

describe('SessionSealer.seal / open', () => {
  it('round-trips, including empty, unicode and large plaintexts', () => {
    const sealer = new SessionSealer([key()]);
    for (const plaintext of ['', '{"sub":"alice"}', 'ünïcødé 🔐 日本語 \u0000', 'x'.repeat(100_000)]) {
      const sealed = sealer.seal(plaintext, AAD);
      assert.equal(sealer.open(sealed, AAD), plaintext);
    }
  });

  it('produces v1.<keyId>.<iv>.<ciphertext>.<tag> with the documented key id and sizes', () => {
    const k = key();
    const sealer = new SessionSealer([k]);
    const sealed = sealer.seal('hello', AAD);
    const parts = sealed.split('.');
    assert.equal(parts.length, 5);
    const [version, keyId, iv, ciphertext, tag] = parts as [string, string, string, string, string];
    assert.equal(version, 'v1');
    assert.equal(keyId, createHash('sha256').update(k).digest('base64url').slice(0, 8));
    assert.equal(sealer.activeKeyId, keyId);
    assert.equal(Buffer.from(iv, 'base64url').length, 12);
    assert.equal(Buffer.from(ciphertext, 'base64url').length, 5);
    assert.equal(Buffer.from(tag, 'base64url').length, 16);
    assert.doesNotMatch(sealed, /[+/=]/, 'base64url without padding');
    assert.ok(!sealed.includes('hello'));
  });

  it('uses a fresh IV for every seal', () => {
    const sealer = new SessionSealer([key()]);
    const ivs = new Set<string>();
    const sealedValues = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const sealed = sealer.seal('same plaintext', AAD);
      sealedValues.add(sealed);
      ivs.add(sealed.split('.')[2]!);
    }
    assert.equal(ivs.size, 50);
    assert.equal(sealedValues.size, 50);
  });

  it('returns undefined for a different aad (a record moved to another key)', () => {
    const sealer = new SessionSealer([key()]);
    const sealed = sealer.seal('payload', AAD);
    assert.equal(sealer.open(sealed, 'session-id-hash-2'), undefined);
    assert.equal(sealer.open(sealed, ''), undefined);
    assert.equal(sealer.open(sealed, `${AAD} `), undefined);
  });

  it('returns undefined when any character of the iv, ciphertext, tag or key id changes', () => {
    const sealer = new SessionSealer([key()]);
    const sealed = sealer.seal('a payload long enough to have a few blocks of ciphertext', AAD);
    for (const part of [1, 2, 3, 4]) {
      const text = sealed.split('.')[part]!;
      for (let i = 0; i < text.length; i++) {
        const tampered = withPart(sealed, part, flipChar(text, i));
        assert.equal(sealer.open(tampered, AAD), undefined, `part ${part}, character ${i}`);
      }
    }
  });

  it('returns undefined for another version, truncation, extra parts and non-canonical encodings', () => {
    const sealer = new SessionSealer([key()]);
    const sealed = sealer.seal('payload', AAD);
    const [, keyId, iv, ciphertext, tag] = sealed.split('.') as [string, string, string, string, string];
    const candidates = [
      withPart(sealed, 0, 'v2'),
      withPart(sealed, 0, 'V1'),
      withPart(sealed, 0, ''),
      `${sealed}.extra`,
      sealed.split('.').slice(0, 4).join('.'),
      withPart(sealed, 4, tag.slice(0, 16)), // truncated tag: GCM would otherwise accept it
      withPart(sealed, 4, ''),
      withPart(sealed, 2, iv.slice(0, -1)),
      withPart(sealed, 2, `${iv}AAAA`),
      withPart(sealed, 4, `${tag}==`),
      withPart(sealed, 3, `${ciphertext}!`),
      withPart(sealed, 3, Buffer.from(ciphertext, 'base64url').toString('base64')),
      withPart(sealed, 1, keyId.toLowerCase() === keyId ? keyId.toUpperCase() : keyId.toLowerCase()),
      '',
      '....',
      'v1',
      'not a sealed value at all',
    ];
    for (const candidate of candidates) {
      if (candidate === sealed) continue;
      assert.equal(sealer.open(candidate, AAD), undefined, candidate);
    }
    // A sealed value from another key set with a colliding-looking shape is refused too.
    assert.equal(sealer.open(new SessionSealer([key()]).seal('payload', AAD), AAD), undefined);
  });

  it('returns undefined when the tag is swapped with that of another record', () => {
    const sealer = new SessionSealer([key()]);
    const one = sealer.seal('payload', AAD);
    const two = sealer.seal('payload', AAD);
    assert.equal(sealer.open(withPart(one, 4, two.split('.')[4]!), AAD), undefined);
    assert.equal(sealer.open(withPart(one, 2, two.split('.')[2]!), AAD), undefined);
  });
});

describe('SessionSealer key rotation', () => {
  it('opens records sealed under an older key after a new key is prepended, and seals under the new one', () => {
    const oldKey = key();
    const newKey = key();
    const before = new SessionSealer([oldKey]);
    const sealedOld = before.seal('old record', AAD);
    const after = new SessionSealer([newKey, oldKey]);
    assert.equal(after.open(sealedOld, AAD), 'old record');
    const sealedNew = after.seal('new record', AAD);
    assert.notEqual(sealedNew.split('.')[1], sealedOld.split('.')[1]);
    assert.equal(after.open(sealedNew, AAD), 'new record');
    assert.equal(before.open(sealedNew, AAD), undefined, 'the old key set cannot open the new key');
    const retired = new SessionSealer([newKey]);
    assert.equal(retired.open(sealedOld, AAD), undefined, 'a removed key no longer opens');
  });
});

describe('SessionSealer.mac / verifyMac', () => {
  it('verifies its own MAC and rejects another value or a modified MAC', () => {
    const sealer = new SessionSealer([key()]);
    const mac = sealer.mac('cookie-value');
    assert.match(mac, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(sealer.verifyMac('cookie-value', mac), true);
    assert.equal(sealer.verifyMac('cookie-valuf', mac), false);
    for (let i = 0; i < mac.length; i++) {
      assert.equal(sealer.verifyMac('cookie-value', flipChar(mac, i)), false, `character ${i}`);
    }
    assert.equal(sealer.verifyMac('cookie-value', ''), false);
    assert.equal(sealer.verifyMac('cookie-value', mac.slice(0, 20)), false);
    assert.equal(sealer.verifyMac('cookie-value', `${mac}A`), false);
    assert.equal(sealer.verifyMac('cookie-value', 'not base64url!'), false);
  });

  it('is deterministic per key and differs between keys', () => {
    const k = key();
    assert.equal(new SessionSealer([k]).mac('v'), new SessionSealer([k]).mac('v'));
    assert.notEqual(new SessionSealer([k]).mac('v'), new SessionSealer([key()]).mac('v'));
  });

  it('verifies MACs made under any configured key and MACs under the active key', () => {
    const oldKey = key();
    const newKey = key();
    const oldMac = new SessionSealer([oldKey]).mac('cookie');
    const rotated = new SessionSealer([newKey, oldKey]);
    assert.equal(rotated.verifyMac('cookie', oldMac), true);
    assert.equal(new SessionSealer([newKey]).mac('cookie'), rotated.mac('cookie'));
    assert.equal(new SessionSealer([newKey]).verifyMac('cookie', oldMac), false);
  });

  it('MACs under a key derived for MACs, not under the raw key shared with encryption', () => {
    const raw = key();
    const rawMac = createHmac('sha256', raw).update('v').digest('base64url');
    const sealer = new SessionSealer([raw]);
    assert.notEqual(sealer.mac('v'), rawMac);
    assert.equal(sealer.verifyMac('v', rawMac), false);
  });
});

describe('SessionSealer construction', () => {
  it('rejects no key and keys that are not exactly 32 bytes', () => {
    assert.throws(() => new SessionSealer([]), Error);
    assert.throws(() => new SessionSealer([new Uint8Array(16)]), /32 bytes/);
    assert.throws(() => new SessionSealer([new Uint8Array(31)]), /32 bytes/);
    assert.throws(() => new SessionSealer([new Uint8Array(33)]), /32 bytes/);
    assert.throws(() => new SessionSealer([key(), new Uint8Array(64)]), /key #2/);
    assert.throws(() => new SessionSealer(['x'.repeat(32) as unknown as Uint8Array]), /32 bytes/);
  });

  it('accepts a Buffer key', () => {
    const sealer = new SessionSealer([randomBytes(32)]);
    assert.equal(sealer.open(sealer.seal('ok', AAD), AAD), 'ok');
  });
});
