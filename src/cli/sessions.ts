import pino from 'pino';
import { loadConfig } from '../config/load.js';
import { DpopKeyCache } from '../dpop/client.js';
import { isBffError } from '../errors.js';
import { IdpClient } from '../oauth/idp-client.js';
import { Metrics } from '../observability/metrics.js';
import { SessionSealer } from '../session/sealing.js';
import { SessionManager } from '../session/session-manager.js';
import { storeFromConfig } from '../store/from-config.js';
import { type CliCommand, type CliIo, parseFlags, UsageError } from './command.js';

export const command: CliCommand = {
  name: 'sessions',
  summary: 'revoke every session of a user (Redis store), on every instance at once',
  usage: `Usage: fapi-bff sessions revoke --sub SUB [--no-idp]

  revoke  end every BFF session of the subject SUB (the ID token's \`sub\`), on every instance sharing
          the Redis store: the sessions are deleted through the store's per-subject index, each
          instance drops its cached copy (the store's change feed) and closes the session's
          WebSockets; the next request of those browsers is answered 401. The refresh token each
          session held is then revoked at the IdP (RFC 7009) when it has a revocation endpoint;
          --no-idp skips that (IdP unreachable): the tokens are discarded but stay valid at the IdP
          until they expire, so also revoke the user's grants in the IdP's console.

Run it with the BFF's own environment (OIDC_*, MS_BFF_SESSION_KEYS, REDIS_* or the MS_BFF_CONFIG
file). The in-memory store lives inside one BFF process and cannot be reached from here: this
command needs the Redis store. Prints one JSON line: {"sub_sessions":N,"ended":N,"revoked":N,
"revocation_failed":N}. Exit status 0 when every session ended (revocation failures are reported,
not fatal), 1 on a configuration or store error, 2 on a usage error.
`,
  async run(io) {
    const [sub, ...rest] = io.args;
    if (sub !== 'revoke')
      throw new UsageError(sub ? `unknown sessions command "${sub}"` : 'missing sessions command (revoke)');
    return revoke(io, rest);
  },
};

async function revoke(io: CliIo, args: string[]): Promise<number> {
  const { values } = parseFlags(args, { sub: { type: 'string' }, 'no-idp': { type: 'boolean' } });
  const subject = values.sub;
  if (subject === undefined || subject === '') throw new UsageError('--sub SUB is required');
  const config = await loadConfig(io.env);
  if (config.redis === undefined) {
    io.stderr.write(
      'fapi-bff sessions: the in-memory store lives inside the BFF process; revoking sessions from outside needs the Redis store (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES)\n',
    );
    return 1;
  }
  // Diagnostics to stderr; stdout carries only the result line.
  const log = pino({ level: 'warn' }, pino.destination(2));
  const store = await storeFromConfig(config, log);
  try {
    const idp = values['no-idp']
      ? undefined
      : await IdpClient.create(config, new Metrics({ defaultMetrics: false }), log);
    const sessions = new SessionManager(store, new SessionSealer(config.session.keys), config.session);
    const dpopKeys = new DpopKeyCache();
    const keys = await sessions.keysOf({ sub: subject });
    let ended = 0;
    let revoked = 0;
    let failed = 0;
    for (const key of keys) {
      // take: the record as it was when deleted, so the refresh token revoked is the current one.
      const removed = await sessions.take(key);
      if (!removed) continue;
      ended++;
      if (!idp?.metadata.revocation_endpoint) continue;
      const token = removed.data.refreshToken ?? removed.data.accessToken;
      try {
        await idp.revoke(
          token,
          removed.data.refreshToken ? 'refresh_token' : 'access_token',
          removed.data.dpop ? await dpopKeys.get(removed.data.dpop) : undefined,
        );
        revoked++;
      } catch (err) {
        failed++;
        log.warn({ code: isBffError(err) ? err.code : 'error' }, 'token revocation failed');
      }
    }
    await sessions.forgetIndex({ sub: subject }, keys);
    io.stdout.write(
      `${JSON.stringify({ sub_sessions: keys.length, ended, revoked, revocation_failed: failed })}\n`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
