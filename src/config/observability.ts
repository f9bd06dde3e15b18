import type { ObservabilityConfig } from './types.js';

/** The typed readers loadConfig hands to section parsers (every problem is collected, never thrown). */
export interface Readers {
  get(name: string): string | undefined;
  bool(name: string, fallback: boolean): boolean;
  int(name: string, fallback: number, min: number, max: number): number;
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T;
  problem(variable: string, message: string): void;
}

/** Admin listener, logging, audit and abuse limits (MS_BFF_ADMIN_*, MS_BFF_ACCESS_LOG, MS_BFF_*_RATE_LIMIT, …). */
export function parseObservability(r: Readers, production: boolean): ObservabilityConfig {
  const adminPort =
    r.get('MS_BFF_ADMIN_PORT') === undefined ? undefined : r.int('MS_BFF_ADMIN_PORT', 0, 0, 65535);
  return {
    admin: { host: r.get('MS_BFF_ADMIN_HOST') ?? '127.0.0.1', port: adminPort },
    accessLog: r.bool('MS_BFF_ACCESS_LOG', !production),
    logFormat: r.oneOf('MS_BFF_LOG_FORMAT', ['json', 'pretty'] as const, production ? 'json' : 'pretty'),
    auditSub: r.oneOf('MS_BFF_AUDIT_SUB', ['plain', 'hash'] as const, 'plain'),
    limits: {
      loginPerMinute: r.int('MS_BFF_LOGIN_RATE_LIMIT', 60, 0, 1_000_000),
      callbackPerMinute: r.int('MS_BFF_CALLBACK_RATE_LIMIT', 60, 0, 1_000_000),
      backchannelPerMinute: r.int('MS_BFF_BACKCHANNEL_RATE_LIMIT', 600, 0, 1_000_000),
      parBudgetPerMinute: r.int('MS_BFF_PAR_BUDGET', 1200, 0, 10_000_000),
      loginTransactionsPerBrowser: r.int('MS_BFF_LOGIN_TRANSACTIONS_PER_BROWSER', 10, 1, 1000),
    },
  };
}
