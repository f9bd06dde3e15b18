import pino from 'pino';
import { loadConfig } from '../config/load.js';
import type { BffConfig } from '../config/types.js';
import { DpopKeyCache } from '../dpop/client.js';
import { isBffError } from '../errors.js';
import { IdpClient } from '../oauth/idp-client.js';
import { IssuerShares } from '../oauth/issuer-share.js';
import { AuditLog } from '../observability/audit.js';
import { loggerOptions } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { SessionSealer } from '../session/sealing.js';
import { type SessionData, SessionManager } from '../session/session-manager.js';
import { storeFromConfig } from '../store/from-config.js';
import { namespacedStore } from '../store/namespaced.js';
import type { KeyValueStore } from '../store/store.js';
import { type CliCommand, type CliIo, parseFlags, UsageError } from './command.js';

export const command: CliCommand = {
  name: 'sessions',
  summary: 'revoke every session of a user (Redis store), on every instance at once',
  usage: `Usage: fapi-bff sessions revoke --sub SUB [--frontend NAME] [--no-idp]

  revoke  end every BFF session of the subject SUB (the ID token's \`sub\`) on every instance
          sharing the Redis store: the sessions are taken out of the store through its per-subject
          index, every instance drops its cached copy (the store's change feed) and closes their
          WebSockets within MS_BFF_WEBSOCKET_RECHECK_SECONDS; the next request of those browsers is
          answered 401. The refresh token each session held is then revoked at the IdP (RFC 7009)
          when it has a revocation endpoint; --no-idp skips that (IdP unreachable): the tokens are
          discarded but stay valid at the IdP until they expire, so also revoke the user's grants
          there. With the MS_BFF_CONFIG file's \`frontends\`, the sessions of every frontend end
          (each revoked with its own client), or only those of --frontend NAME.

Run it with the BFF's own environment (OIDC_*, MS_BFF_SESSION_KEYS, REDIS_* or the MS_BFF_CONFIG
file). The in-memory store lives inside one BFF process and cannot be reached from here: this
command needs the Redis store. Prints one JSON line:
  {"sub_sessions":N,"ended":N,"revoked":N,"revocation_failed":N,"frontends":{"<name>":{<same>}}}
Every session ended is also an audit line (event session.revoked, docs/audit.md) on standard
error, a JSON log line like the BFF's. Exit status 0 when every session ended (revocation failures
are reported, not fatal), 1 on a configuration or store error, 2 on a usage error.
`,
  async run(io) {
    const [sub, ...rest] = io.args;
    if (sub !== 'revoke')
      throw new UsageError(sub ? `unknown sessions command "${sub}"` : 'missing sessions command (revoke)');
    return revoke(io, rest);
  },
};

interface Counts {
  sub_sessions: number;
  ended: number;
  revoked: number;
  revocation_failed: number;
}

async function revoke(io: CliIo, args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    sub: { type: 'string' },
    frontend: { type: 'string' },
    'no-idp': { type: 'boolean' },
  });
  const subject = values.sub;
  if (subject === undefined || subject === '') throw new UsageError('--sub SUB is required');
  const config = await loadConfig(io.env);
  const frontends = config.frontends.filter(
    (f) => values.frontend === undefined || f.name === values.frontend,
  );
  if (frontends.length === 0)
    throw new UsageError(
      `--frontend ${values.frontend ?? ''} is not one of ${config.frontends.map((f) => f.name).join(', ')}`,
    );
  if (config.redis === undefined) {
    io.stderr.write(
      'fapi-bff sessions: the in-memory store lives inside the BFF process; revoking sessions from outside needs the Redis store (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES)\n',
    );
    return 1;
  }
  // Diagnostics and audit lines to stderr; stdout carries only the result line.
  const stderr = pino.destination(2);
  const log = pino({ level: 'warn' }, stderr);
  const auditLog = pino(loggerOptions('info'), stderr);
  const store = await storeFromConfig(config, log);
  try {
    const total: Counts = { sub_sessions: 0, ended: 0, revoked: 0, revocation_failed: 0 };
    const byFrontend: Record<string, Counts> = {};
    // The frontends of one issuer discover it once.
    const shares = new IssuerShares();
    for (const frontend of frontends) {
      // Each frontend keeps its sessions under its own namespace, sealed with its keys, issued to its client.
      const audit = new AuditLog(auditLog, {
        sub: frontend.config.observability.auditSub,
        hashKey: frontend.config.session.keys[0] as Uint8Array,
        frontend: frontend.name,
      });
      const counts = await revokeIn(
        namespacedStore(store, frontend.storeNamespace),
        frontend.config,
        subject,
        values['no-idp'] === true,
        { log, audit, shares },
      );
      byFrontend[frontend.name] = counts;
      for (const k of Object.keys(total) as (keyof Counts)[]) total[k] += counts[k];
    }
    io.stdout.write(`${JSON.stringify({ ...total, frontends: byFrontend })}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

async function revokeIn(
  store: KeyValueStore,
  config: BffConfig,
  subject: string,
  noIdp: boolean,
  { log, audit, shares }: { log: pino.Logger; audit: AuditLog; shares: IssuerShares },
): Promise<Counts> {
  const sessions = new SessionManager(store, new SessionSealer(config.session.keys), config.session);
  const keys = await sessions.keysOf({ sub: subject });
  const counts: Counts = { sub_sessions: keys.length, ended: 0, revoked: 0, revocation_failed: 0 };
  if (keys.length === 0) return counts;
  const idp = noIdp
    ? undefined
    : await IdpClient.create(config, new Metrics({ defaultMetrics: false }), log, undefined, shares);
  const dpopKeys = new DpopKeyCache();
  for (const key of keys) {
    // take: the record as it was when deleted, so the refresh token revoked is the current one.
    const removed = await sessions.take(key);
    if (!removed) continue;
    counts.ended++;
    const revocation = await revokeToken(removed.data, idp, dpopKeys, log);
    if (revocation === 'revoked') counts.revoked++;
    if (revocation === 'failed') counts.revocation_failed++;
    audit.emit('session.revoked', { sessionKey: key, sub: subject, revocation, initiator: 'cli' });
  }
  await sessions.forgetIndex({ sub: subject }, keys);
  return counts;
}

/** Revokes the session's refresh token (else its access token) at the IdP (RFC 7009 §2.1). */
async function revokeToken(
  data: SessionData,
  idp: IdpClient | undefined,
  dpopKeys: DpopKeyCache,
  log: pino.Logger,
): Promise<'revoked' | 'failed' | 'skipped'> {
  if (!idp?.metadata.revocation_endpoint) return 'skipped';
  try {
    await idp.revoke(
      data.refreshToken ?? data.accessToken,
      data.refreshToken ? 'refresh_token' : 'access_token',
      data.dpop ? await dpopKeys.get(data.dpop) : undefined,
    );
    return 'revoked';
  } catch (err) {
    log.warn({ code: isBffError(err) ? err.code : 'error' }, 'token revocation failed');
    return 'failed';
  }
}
