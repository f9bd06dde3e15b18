import type { ObservabilityConfig } from './types.js';
import type { Values } from './variables.js';

/** Admin listener, logging, audit and abuse limits, from their variables (no cross-field rules). */
export function observabilityConfig(v: Values): ObservabilityConfig {
  return {
    admin: { host: v.MS_BFF_ADMIN_HOST, port: v.MS_BFF_ADMIN_PORT },
    accessLog: v.MS_BFF_ACCESS_LOG,
    logFormat: v.MS_BFF_LOG_FORMAT,
    auditSub: v.MS_BFF_AUDIT_SUB,
    limits: {
      loginPerMinute: v.MS_BFF_LOGIN_RATE_LIMIT,
      callbackPerMinute: v.MS_BFF_CALLBACK_RATE_LIMIT,
      backchannelPerMinute: v.MS_BFF_BACKCHANNEL_RATE_LIMIT,
      parBudgetPerMinute: v.MS_BFF_PAR_BUDGET,
      loginTransactionsPerBrowser: v.MS_BFF_LOGIN_TRANSACTIONS_PER_BROWSER,
    },
  };
}
