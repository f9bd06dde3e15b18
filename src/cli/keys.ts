import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { fipsAlgProblem } from '../fips/policy.js';
import { type KeyFileJwk, readKeySource } from '../keys/key-files.js';
import { schedule } from '../keys/schedule.js';
import { type CliCommand, type CliIo, parseFlags, UsageError } from './command.js';

const SIG_ALGS = ['PS256', 'ES256', 'EdDSA'] as const;
const ENC_ALGS = ['RSA-OAEP-256', 'ECDH-ES'] as const;

export const command: CliCommand = {
  name: 'keys',
  summary: 'generate, list and rotate our key sets (next → active → retiring)',
  usage: `Usage: fapi-bff keys generate --use sig|enc --alg ALG --out DIR
       fapi-bff keys list DIR
       fapi-bff keys rotate DIR [--use sig|enc]

  generate  create DIR if needed and write one private JWK (kid, use, alg, iat) to DIR/<kid>.json,
            mode 0600. ALG: PS256, ES256, EdDSA (use sig); RSA-OAEP-256, ECDH-ES (P-256; use enc).
            With FIPS_MODE=true, EdDSA is refused.
  list      print kid, use, alg, state, created and the SHA-256 JWK thumbprint of every key in DIR
            (a directory or a JWK/JWKS file); never private material
  rotate    add exactly one key to DIR, of the use and alg of its newest key (or --use)

Point BFF_JWT_SIGNING_KEY (use sig) or BFF_JARM_PRIV_KEY (use enc) at DIR. The running BFF re-reads
it on change or SIGHUP, publishes a new key at once and lets it sign (or advertises it first) only
after MS_BFF_KEY_PREPUBLISH_SECONDS of publication; older keys stay published and keep verifying and
decrypting (state retiring) until you delete their files. \`keys list\` shows the state by the
schedule of the files (creation time + pre-publish window); the BFF counts from when it first
published the key, so right after a restart it may still sign with the previous key.
`,
  async run(io) {
    const [sub, ...rest] = io.args;
    if (sub === 'generate') return generate(io, rest);
    if (sub === 'list') return list(io, rest);
    if (sub === 'rotate') return rotate(io, rest);
    throw new UsageError(
      sub ? `unknown keys command "${sub}"` : 'missing keys command (generate, list, rotate)',
    );
  },
};

async function newKey(use: 'sig' | 'enc', alg: string, env: CliIo['env'], after = 0): Promise<KeyFileJwk> {
  const allowed: readonly string[] = use === 'sig' ? SIG_ALGS : ENC_ALGS;
  if (!allowed.includes(alg))
    throw new UsageError(`--alg ${alg} is not one of ${allowed.join(', ')} for use ${use}`);
  if (/^(true|1|yes|on)$/i.test(env.FIPS_MODE?.trim() ?? '')) {
    const problem = fipsAlgProblem(alg);
    if (problem) throw new Error(problem);
  }
  const { privateKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg.startsWith('PS') || alg.startsWith('RSA') ? { modulusLength: 3072 } : {}),
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
  const jwk: JWK = await exportJWK(privateKey);
  const pub: JWK = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, n: jwk.n, e: jwk.e };
  for (const k of Object.keys(pub) as (keyof JWK)[]) if (pub[k] === undefined) delete pub[k];
  // kid: the RFC 7638 thumbprint, so it is unique and says nothing about the deployment.
  const kid = await calculateJwkThumbprint(pub, 'sha256');
  // iat orders the set (schedule.ts): strictly after the newest key, even within the same second.
  return { ...jwk, kid, use, alg, iat: Math.max(Math.floor(Date.now() / 1000), after + 1) };
}

function writeKey(dir: string, jwk: KeyFileJwk): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${jwk.kid}.json`);
  writeFileSync(file, `${JSON.stringify(jwk, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return file;
}

async function generate(io: CliIo, args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    use: { type: 'string' },
    alg: { type: 'string' },
    out: { type: 'string' },
  });
  if (values.use !== 'sig' && values.use !== 'enc') throw new UsageError('--use sig|enc is required');
  if (!values.alg) throw new UsageError('--alg is required');
  if (!values.out) throw new UsageError('--out DIR is required');
  const jwk = await newKey(values.use, values.alg, io.env);
  const file = writeKey(values.out, jwk);
  io.stdout.write(`${jwk.kid}\t${jwk.use}\t${jwk.alg}\t${file}\n`);
  return 0;
}

async function list(io: CliIo, args: string[]): Promise<number> {
  const { positionals, values } = parseFlags(args, { json: { type: 'boolean' } }, true);
  const dir = positionals[0];
  if (!dir) throw new UsageError('keys list DIR');
  const keys = readKeySource(dir);
  const prepublish = Number(io.env.MS_BFF_KEY_PREPUBLISH_SECONDS ?? 3600);
  const now = Date.now();
  const rows = [];
  for (const use of ['sig', 'enc'] as const) {
    const ofUse = keys.filter((k) => (k.use ?? 'sig') === use && typeof k.kid === 'string');
    const states = schedule(
      ofUse.map((k) => ({ kid: k.kid as string, createdAt: k.iat ?? 0, publishedAt: (k.iat ?? 0) * 1000 })),
      now,
      Number.isFinite(prepublish) ? prepublish : 3600,
    );
    for (const k of ofUse) {
      const pub: JWK = { kty: k.kty, crv: k.crv, x: k.x, y: k.y, n: k.n, e: k.e };
      for (const f of Object.keys(pub) as (keyof JWK)[]) if (pub[f] === undefined) delete pub[f];
      rows.push({
        kid: k.kid as string,
        use,
        alg: k.alg ?? '',
        state: states.get(k.kid as string) ?? 'retiring',
        created: k.iat ? new Date(k.iat * 1000).toISOString() : '',
        thumbprint: await calculateJwkThumbprint(pub, 'sha256'),
      });
    }
  }
  if (values.json) io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  else
    io.stdout.write(
      [
        'kid\tuse\talg\tstate\tcreated\tthumbprint',
        ...rows.map((r) => [r.kid, r.use, r.alg, r.state, r.created, r.thumbprint].join('\t')),
      ].join('\n') + '\n',
    );
  return 0;
}

async function rotate(io: CliIo, args: string[]): Promise<number> {
  const { positionals, values } = parseFlags(args, { use: { type: 'string' } }, true);
  const dir = positionals[0];
  if (!dir) throw new UsageError('keys rotate DIR');
  if (readdirSync(dir).length === 0) throw new Error(`${dir} is empty: use keys generate first`);
  const keys = readKeySource(dir)
    .filter((k) => values.use === undefined || (k.use ?? 'sig') === values.use)
    .sort((a, b) => (a.iat ?? 0) - (b.iat ?? 0));
  const newest = keys.at(-1);
  if (!newest?.alg)
    throw new Error(`${dir} holds no key${values.use ? ` of use ${values.use}` : ''} with an alg`);
  const use = (newest.use ?? 'sig') as 'sig' | 'enc';
  const jwk = await newKey(use, newest.alg, io.env, newest.iat ?? 0);
  const file = writeKey(dir, jwk);
  io.stdout.write(
    `${jwk.kid}\t${use}\t${jwk.alg}\t${file}\tnext (signs after MS_BFF_KEY_PREPUBLISH_SECONDS of publication)\n`,
  );
  return 0;
}
