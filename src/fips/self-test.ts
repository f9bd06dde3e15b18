import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  generateKeyPairSync,
  getFips,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { fipsAlgProblem, fipsJwkProblem } from './policy.js';

/** One check of the self-test: `ok` is the expected outcome (an approved primitive works, a non-approved one is refused). */
export interface SelfTestCheck {
  readonly name: string;
  readonly expect: 'works' | 'refused';
  readonly ok: boolean;
  /** What happened, e.g. the OpenSSL error for a refused algorithm. Never key material. */
  readonly detail: string;
}

/** Approved primitives the BFF depends on (FIPS 140-3 / SP 800-140C): each must work. */
const APPROVED: Record<string, () => void> = {
  // FIPS 180-4 known answer: SHA-256("abc").
  'sha-256': () => {
    const got = createHash('sha256').update('abc').digest('hex');
    if (got !== 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
      throw new Error('wrong digest');
  },
  'hmac-sha-256': () => void createHmac('sha256', randomBytes(32)).update('x').digest(),
  'aes-256-gcm': () => {
    const key = randomBytes(32);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    const ct = Buffer.concat([c.update('fips'), c.final()]);
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAuthTag(c.getAuthTag());
    if (Buffer.concat([d.update(ct), d.final()]).toString() !== 'fips') throw new Error('round trip failed');
  },
  'ecdsa-p-256': () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const sig = sign('sha256', Buffer.from('fips'), privateKey);
    if (!verify('sha256', Buffer.from('fips'), publicKey, sig)) throw new Error('verify failed');
  },
};

/** Non-approved primitives: the FIPS provider must refuse each (else another provider answered). */
const NON_APPROVED: Record<string, () => void> = {
  md5: () => void createHash('md5').update('x').digest(),
  'chacha20-poly1305': () => {
    const c = createCipheriv('chacha20-poly1305', randomBytes(32), randomBytes(12), { authTagLength: 16 });
    c.update('x');
    c.final();
  },
};

/**
 * Non-approved primitives that the OpenSSL 3.0 FIPS provider still offers (as non-approved services
 * of its Security Policy, without a `fips=no` property), so `fips=yes` does not refuse them: the
 * BFF's own policy must. Each check runs the primitive to report what the provider does, and the
 * policy gate that every key and alg passes in FIPS mode.
 */
const POLICY_REFUSED: Record<string, { run: () => void; jwk: { kty: string; crv: string }; alg: string }> = {
  x25519: {
    run: () => void generateKeyPairSync('x25519'),
    jwk: { kty: 'OKP', crv: 'X25519' },
    alg: 'ECDH-ES',
  },
  ed25519: {
    run: () => void generateKeyPairSync('ed25519'),
    jwk: { kty: 'OKP', crv: 'Ed25519' },
    alg: 'EdDSA',
  },
};

function attempt(fn: () => void): { threw: boolean; detail: string } {
  try {
    fn();
    return { threw: false, detail: 'works' };
  } catch (err) {
    return { threw: true, detail: (err as Error).message.slice(0, 120) };
  }
}

/**
 * The FIPS self-test run at startup with FIPS_MODE=true. `crypto.getFips()` alone only says the
 * default properties ask for `fips=yes`; this shows that approved primitives work and that the
 * non-approved ones the BFF could otherwise reach are refused, i.e. that no other provider serves them.
 *
 * @see https://docs.openssl.org/3.0/man7/fips_module/ (default_properties fips=yes)
 */
export function runSelfTest(): { passed: boolean; getFips: number; checks: SelfTestCheck[] } {
  const checks: SelfTestCheck[] = [];
  for (const [name, fn] of Object.entries(APPROVED)) {
    const r = attempt(fn);
    checks.push({ name, expect: 'works', ok: !r.threw, detail: r.detail });
  }
  for (const [name, fn] of Object.entries(NON_APPROVED)) {
    const r = attempt(fn);
    checks.push({
      name,
      expect: 'refused',
      ok: r.threw,
      detail: r.threw ? `refused: ${r.detail}` : 'works (NOT refused)',
    });
  }
  for (const [name, { run, jwk, alg }] of Object.entries(POLICY_REFUSED)) {
    const r = attempt(run);
    const keyProblem = fipsJwkProblem(jwk);
    const algProblem = alg === 'EdDSA' ? fipsAlgProblem(alg) : keyProblem;
    const refused = keyProblem !== undefined && algProblem !== undefined;
    checks.push({
      name,
      expect: 'refused',
      ok: refused,
      detail: `${refused ? 'refused by fapi-bff policy' : 'NOT refused by fapi-bff policy'}; provider: ${r.threw ? `refused (${r.detail})` : 'offers it as a non-approved service'}`,
    });
  }
  const fips = getFips();
  return { passed: fips === 1 && checks.every((c) => c.ok), getFips: fips, checks };
}
