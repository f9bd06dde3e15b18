import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

/**
 * What `fapi-bff register` stores (RFC 7591 §3.2.1, RFC 7592 §3): the credentials the IdP issued
 * and what managing the registration needs. Mode 0600: it holds secrets.
 */
export interface RegistrationRecord {
  readonly client_id: string;
  readonly client_secret?: string;
  readonly registration_access_token?: string;
  readonly registration_client_uri?: string;
  readonly client_id_issued_at?: number;
  readonly client_secret_expires_at?: number;
  /** The issuer the client is registered at; the BFF refuses the file for another issuer. */
  readonly issuer: string;
}

/** Read and validate a registration file; a problem message instead of throwing. */
export function readRegistrationFile(path: string): RegistrationRecord | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `cannot read ${path} (${code})` : `${path} is not JSON`;
  }
  const r = parsed as Partial<Record<keyof RegistrationRecord, unknown>>;
  if (typeof r !== 'object' || r === null || typeof r.client_id !== 'string' || r.client_id === '')
    return `${path} holds no client_id`;
  if (typeof r.issuer !== 'string') return `${path} names no issuer`;
  for (const k of ['client_secret', 'registration_access_token', 'registration_client_uri'] as const) {
    if (r[k] !== undefined && typeof r[k] !== 'string') return `${path}: ${k} must be a string`;
  }
  return r as RegistrationRecord;
}

/** Write atomically with mode 0600 (temp file in the same directory, then rename). */
export function writeRegistrationFile(path: string, record: RegistrationRecord): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}
