import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { JWK } from 'jose';

/** A private JWK as `fapi-bff keys generate` writes it: kid, use, alg and `iat` (creation, seconds). */
export type KeyFileJwk = JWK & { iat?: number };

/** Files of a key directory: JSON (a JWK or a JWKS) only; anything else is ignored. */
const KEY_FILE = /\.(json|jwk|jwks)$/i;

/**
 * The private JWKs of a key source: a directory of key files, or one file holding a JWK or a JWKS.
 * Throws with a message naming the file on anything unreadable, so a reload can refuse the set.
 */
export function readKeySource(path: string): KeyFileJwk[] {
  const files = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((name) => KEY_FILE.test(name) && !name.startsWith('.'))
        .sort()
        .map((name) => join(path, name))
    : [path];
  const keys: KeyFileJwk[] = [];
  for (const file of files) {
    let parsed: KeyFileJwk & { keys?: KeyFileJwk[] };
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as KeyFileJwk & { keys?: KeyFileJwk[] };
    } catch (err) {
      throw new Error(`${file}: ${(err as NodeJS.ErrnoException).code ?? 'not JSON'}`, { cause: err });
    }
    keys.push(...(Array.isArray(parsed.keys) ? parsed.keys : [parsed]));
  }
  return keys;
}

/** JWKS text of a key directory, for the config reader (which expects key material as text). */
export function keyDirectoryAsJwks(path: string): string {
  return JSON.stringify({ keys: readKeySource(path) });
}
