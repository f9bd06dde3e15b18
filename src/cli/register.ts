import { readFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import { loadConfig } from '../config/load.js';
import { registrationRequestBody } from '../oauth/client-metadata.js';
import { sizeCappedFetch } from '../oauth/http.js';
import { registrationRequest } from '../registration/client.js';
import {
  type RegistrationRecord,
  readRegistrationFile,
  writeRegistrationFile,
} from '../registration/file.js';
import type { BffConfig } from '../config/types.js';
import { type CliCommand, type CliIo, parseFlags, UsageError } from './command.js';
import { chooseFrontend, FRONTEND_OPTION, frontendConfig } from './frontend-choice.js';

export const command: CliCommand = {
  name: 'register',
  summary: 'dynamic client registration (RFC 7591) and management (RFC 7592)',
  usage: `Usage: fapi-bff register [--frontend NAME] [--initial-access-token-file F] --out FILE
       fapi-bff register [--frontend NAME] --update [--out FILE]
       fapi-bff register [--frontend NAME] --show [--out FILE]
       fapi-bff register [--frontend NAME] --delete [--out FILE]

Registers the BFF at the IdP's registration_endpoint (RFC 7591) with the metadata the configuration
in the environment needs (exactly what \`fapi-bff client-metadata\` prints), and stores client_id,
client_secret (if any), registration_access_token and registration_client_uri in FILE (mode 0600).
Start the BFF with OIDC_CLIENT_REGISTRATION_FILE=FILE; OIDC_CLIENT_ID is then not needed.

  --update   send the current metadata again (RFC 7592 §2.2 PUT), e.g. after a key rotation or a
             configuration change; a new registration access token is stored when the IdP issues one
  --show     print the registration as the IdP holds it (RFC 7592 §2.1 GET); secrets are masked
  --delete   delete the registration at the IdP (RFC 7592 §2.3) and then the file
  --frontend NAME
             with several frontends in the MS_BFF_CONFIG file, the one whose client this is (each
             frontend has its own client); required then, except for --show/--delete with --out.
             Give the frontend \`clientRegistrationFile: FILE\` in the file to start with it.

FILE defaults to the frontend's clientRegistrationFile, else OIDC_CLIENT_REGISTRATION_FILE. Errors of
the IdP (RFC 7591 §3.2.2) are shown with their code and description.
`,
  async run(io) {
    const { values } = parseFlags(io.args, {
      out: { type: 'string' },
      'initial-access-token-file': { type: 'string' },
      update: { type: 'boolean' },
      show: { type: 'boolean' },
      delete: { type: 'boolean' },
      ...FRONTEND_OPTION,
    });
    const modes = (['update', 'show', 'delete'] as const).filter((m) => values[m]);
    if (modes.length > 1) throw new UsageError('choose one of --update, --show, --delete');
    const mode = modes[0] ?? 'register';
    // --show and --delete need only the file (a frontend's, from the MS_BFF_CONFIG file, without
    // --out); the others send the chosen frontend's metadata.
    const config =
      mode === 'register' || mode === 'update' || (values.out === undefined && io.env.MS_BFF_CONFIG?.trim())
        ? await loadConfig(io.env, { unregistered: true })
        : undefined;
    const chosen = config && frontendConfig(config, chooseFrontend(config, values.frontend));
    const file =
      values.out ?? (chosen ? chosen.oidc.registration?.file : io.env.OIDC_CLIENT_REGISTRATION_FILE?.trim());
    if (!file) {
      throw new UsageError(
        "--out FILE is required (or OIDC_CLIENT_REGISTRATION_FILE, or the frontend's clientRegistrationFile)",
      );
    }
    if (mode === 'register' && chosen) {
      const several = (config?.frontends.length ?? 1) > 1;
      return register(io, chosen, file, values['initial-access-token-file'], several);
    }
    const record = readRegistrationFile(file);
    if (typeof record === 'string') throw new Error(record);
    if (!record.registration_client_uri || !record.registration_access_token)
      throw new Error(`${file} has no registration_client_uri / registration_access_token (RFC 7592)`);
    if (mode === 'show') {
      const current = await registrationRequest(
        'GET',
        record.registration_client_uri,
        record.registration_access_token,
      );
      io.stdout.write(`${JSON.stringify(mask(current ?? {}), null, 2)}\n`);
      return 0;
    }
    if (mode === 'delete') {
      await registrationRequest('DELETE', record.registration_client_uri, record.registration_access_token);
      const { rmSync } = await import('node:fs');
      rmSync(file, { force: true });
      io.stdout.write(`deleted client ${record.client_id} at the IdP and removed ${file}\n`);
      return 0;
    }
    if (!chosen) throw new UsageError('--update needs the configuration');
    const issuer = chosen.oidc.issuer.href.replace(/\/$/, '');
    if (record.issuer.replace(/\/$/, '') !== issuer)
      throw new Error(`${file} registers a client at ${record.issuer}, not at OIDC_ISSUER ${issuer}`);
    // RFC 7592 §2.2: the full metadata, with client_id (and client_secret when one was issued).
    const body = {
      ...registrationRequestBody(chosen),
      client_id: record.client_id,
      ...(record.client_secret ? { client_secret: record.client_secret } : {}),
    };
    const updated = await registrationRequest(
      'PUT',
      record.registration_client_uri,
      record.registration_access_token,
      body,
    );
    writeRegistrationFile(file, toRecord(updated ?? {}, record.issuer, record));
    io.stdout.write(`updated client ${record.client_id}; registration in ${file}\n`);
    return 0;
  },
};

async function register(
  io: CliIo,
  config: BffConfig,
  file: string,
  tokenFile: string | undefined,
  several: boolean,
): Promise<number> {
  const discovered = await oidc.discovery(config.oidc.issuer, config.oidc.clientId, undefined, undefined, {
    execute: config.oidc.allowInsecureIssuer ? [oidc.allowInsecureRequests] : [],
    [oidc.customFetch]: sizeCappedFetch(),
    timeout: Math.ceil(config.oidc.timeoutMs / 1000),
  });
  const endpoint = discovered.serverMetadata().registration_endpoint;
  if (typeof endpoint !== 'string')
    throw new Error(`the IdP ${config.oidc.issuer.href} advertises no registration_endpoint (RFC 7591)`);
  const token = tokenFile ? readFileSync(tokenFile, 'utf8').trim() : undefined;
  const response = await registrationRequest('POST', endpoint, token, registrationRequestBody(config));
  const record = toRecord(response ?? {}, config.oidc.issuer.href, undefined);
  writeRegistrationFile(file, record);
  const startWith = several
    ? `give the frontend clientRegistrationFile: ${file}`
    : `start with OIDC_CLIENT_REGISTRATION_FILE=${file}`;
  io.stdout.write(`registered client ${record.client_id} at ${config.oidc.issuer.href}; ${startWith}\n`);
  return 0;
}

function toRecord(
  response: Record<string, unknown>,
  issuer: string,
  previous: RegistrationRecord | undefined,
): RegistrationRecord {
  const str = (k: string) => (typeof response[k] === 'string' ? (response[k] as string) : undefined);
  const num = (k: string) => (typeof response[k] === 'number' ? (response[k] as number) : undefined);
  const clientId = str('client_id') ?? previous?.client_id;
  if (!clientId) throw new Error('the IdP answered without a client_id (RFC 7591 §3.2.1)');
  const record: Record<string, unknown> = {
    client_id: clientId,
    client_secret: str('client_secret') ?? previous?.client_secret,
    // RFC 7592 §2.2: the IdP may rotate the registration access token on update.
    registration_access_token: str('registration_access_token') ?? previous?.registration_access_token,
    registration_client_uri: str('registration_client_uri') ?? previous?.registration_client_uri,
    client_id_issued_at: num('client_id_issued_at') ?? previous?.client_id_issued_at,
    client_secret_expires_at: num('client_secret_expires_at') ?? previous?.client_secret_expires_at,
    issuer,
  };
  for (const k of Object.keys(record)) if (record[k] === undefined) delete record[k];
  return record as unknown as RegistrationRecord;
}

function mask(md: Record<string, unknown>): Record<string, unknown> {
  const out = { ...md };
  for (const k of ['client_secret', 'registration_access_token'])
    if (typeof out[k] === 'string') out[k] = '***';
  return out;
}
