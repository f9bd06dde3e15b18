/**
 * DPoP proof signing cost per upstream request (`npm run bench` runs it after run.ts; standalone:
 * `node dist/bench/dpop-sign.js`): jose's SignJWT on a WebCrypto key (what src/ did before) against
 * DpopKey.proof (src/dpop/client.ts: node:crypto on a KeyObject) for ES256, PS256 and EdDSA. Every
 * variant's proof is first verified with jose. Median of 9 batches; µs of wall time and of process
 * CPU (all threads: WebCrypto signs on the thread pool) per proof, one at a time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EmbeddedJWK, importJWK, jwtVerify, SignJWT } from 'jose';
import { type DpopAlg, DpopKey, generateDpopKey } from '../src/dpop/client.js';

const htu = new URL('http://127.0.0.1:4020/items');
const accessToken = randomBytes(520).toString('base64url');

async function joseVariant(alg: DpopAlg): Promise<() => Promise<string>> {
  const stored = await generateDpopKey(alg);
  const privateKey = await importJWK({ ...stored.jwk, alg }, alg);
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, alg: _a, ...jwk } = stored.jwk;
  return () =>
    new SignJWT({
      jti: randomBytes(16).toString('base64url'),
      htm: 'GET',
      htu: `${htu.origin}${htu.pathname}`,
      ath: createHash('sha256').update(accessToken).digest('base64url'),
    })
      .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk })
      .setIssuedAt()
      .sign(privateKey);
}

async function nodeVariant(alg: DpopAlg): Promise<() => Promise<string>> {
  const key = await DpopKey.import(await generateDpopKey(alg));
  return () => key.proof({ htm: 'GET', htu, accessToken });
}

async function main(): Promise<void> {
  const variants: [string, () => Promise<string>][] = [
    ['jose SignJWT + WebCrypto key, ES256 (before)', await joseVariant('ES256')],
    ['DpopKey.proof node:crypto, ES256 (now)', await nodeVariant('ES256')],
    ['jose SignJWT + WebCrypto key, EdDSA', await joseVariant('EdDSA')],
    ['DpopKey.proof node:crypto, EdDSA', await nodeVariant('EdDSA')],
    ['jose SignJWT + WebCrypto key, PS256', await joseVariant('PS256')],
    ['DpopKey.proof node:crypto, PS256', await nodeVariant('PS256')],
  ];
  for (const [name, make] of variants) {
    await jwtVerify(await make(), EmbeddedJWK, { typ: 'dpop+jwt' }).catch((err: unknown) => {
      throw new Error(`${name}: proof does not verify with jose`, { cause: err });
    });
  }
  const N = 300;
  const wall = new Map<string, number[]>(variants.map(([n]) => [n, []]));
  const cpu = new Map<string, number[]>(variants.map(([n]) => [n, []]));
  for (let batch = 0; batch < 10; batch++) {
    for (const [name, make] of batch % 2 ? variants : [...variants].reverse()) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < N; i++) await make();
      const w = ((performance.now() - t0) * 1000) / N;
      const c = process.cpuUsage(c0);
      if (batch === 0) continue;
      wall.get(name)?.push(w);
      cpu.get(name)?.push((c.user + c.system) / N);
    }
  }
  const med = (v: number[] = []) => [...v].sort((a, b) => a - b)[v.length >> 1] ?? Number.NaN;
  console.log('-- DPoP proof signing, µs per proof (median of 9 batches of 300, one at a time) --');
  console.log('   wall µs   CPU µs   variant');
  for (const [name] of variants) {
    console.log(
      `  ${med(wall.get(name)).toFixed(1).padStart(7)}  ${med(cpu.get(name)).toFixed(1).padStart(7)}   ${name}`,
    );
  }
}

await main();
