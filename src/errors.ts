/**
 * One error hierarchy with stable codes. Codes are API: SPAs, dashboards and runbooks key on them,
 * so they are never renamed (docs/errors.md lists them). Messages are safe to show; `cause` never
 * reaches a response body or the browser.
 */
export const ERROR_CODES = {
  BFF_CONFIG_INVALID: { status: 500, title: 'Configuration is invalid' },
  BFF_IDP_CAPABILITY_MISSING: { status: 500, title: 'The identity provider lacks a required capability' },
  BFF_IDP_UNAVAILABLE: { status: 502, title: 'The identity provider could not be reached' },
  BFF_IDP_ERROR: { status: 502, title: 'The identity provider returned an error' },
  BFF_STORE_UNAVAILABLE: { status: 503, title: 'The session store is unavailable' },
  BFF_SESSION_REQUIRED: { status: 401, title: 'No valid session' },
  BFF_SESSION_EXPIRED: { status: 401, title: 'The session has expired' },
  BFF_CSRF_FAILED: { status: 403, title: 'Cross-site request refused' },
  BFF_LOGIN_INVALID_RETURN_TO: { status: 400, title: 'returnTo must be a same-origin relative path' },
  BFF_CALLBACK_INVALID: { status: 400, title: 'The authorization response is invalid' },
  BFF_CALLBACK_STATE_MISMATCH: {
    status: 400,
    title: 'The authorization response does not belong to this browser',
  },
  BFF_CALLBACK_TRANSACTION_EXPIRED: {
    status: 400,
    title: 'The login took too long or was already completed',
  },
  BFF_CALLBACK_ISS_MISMATCH: {
    status: 400,
    title: 'The authorization response came from an unexpected issuer',
  },
  BFF_CALLBACK_ACCESS_DENIED: { status: 403, title: 'The identity provider refused the login' },
  BFF_LOGIN_CANCELLED: { status: 400, title: 'Sign-in cancelled' },
  BFF_LOGIN_INVALID_PARAMETER: { status: 400, title: 'A login parameter is not allowed or malformed' },
  BFF_AUTHENTICATION_INSUFFICIENT: {
    status: 403,
    title: 'The sign-in did not reach the requested authentication level',
  },
  BFF_STEP_UP_REQUIRED: { status: 401, title: 'The API requires a stronger or more recent sign-in' },
  BFF_ID_TOKEN_INVALID: { status: 502, title: 'The ID token failed validation' },
  BFF_TOKEN_RESPONSE_INVALID: { status: 502, title: 'The token response failed validation' },
  BFF_REFRESH_FAILED: { status: 401, title: 'The session could not be refreshed' },
  BFF_LOGOUT_SID_MISMATCH: { status: 403, title: 'The logout request does not match the session' },
  BFF_LOGOUT_TOKEN_INVALID: { status: 400, title: 'The back-channel logout token is invalid' },
  BFF_ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  BFF_FRONTEND_NOT_FOUND: { status: 404, title: 'No frontend is served at this host and path' },
  BFF_ROUTE_DISABLED: { status: 503, title: 'This API route is switched off' },
  BFF_UPSTREAM_UNAVAILABLE: { status: 502, title: 'The upstream API could not be reached' },
  BFF_UPSTREAM_TIMEOUT: { status: 504, title: 'The upstream API timed out' },
  BFF_FRONTEND_UNAVAILABLE: { status: 502, title: 'The frontend origin could not be reached' },
  BFF_REQUEST_INVALID: { status: 400, title: 'The request is malformed' },
  BFF_RATE_LIMITED: { status: 429, title: 'Too many requests' },
  BFF_INTERNAL: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface BffErrorOptions {
  cause?: unknown;
  /** A short, safe detail for the response body. Never a token, secret or library message. */
  detail?: string;
  /** Override the default status of the code (e.g. 503 instead of 502 for an IdP outage). */
  status?: number;
  /** Bounded reason label for metrics. */
  reason?: string;
  /** Extra response headers (e.g. WWW-Authenticate). */
  headers?: Record<string, string>;
  /** Problem-details extension members (RFC 9457 §3.2) the client acts on; safe values only. */
  extensions?: Readonly<Record<string, string | number>>;
}

export class BffError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly detail: string | undefined;
  readonly reason: string | undefined;
  readonly headers: Record<string, string> | undefined;
  readonly extensions: Readonly<Record<string, string | number>> | undefined;

  constructor(code: ErrorCode, options: BffErrorOptions = {}) {
    super(ERROR_CODES[code].title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BffError';
    this.code = code;
    this.statusCode = options.status ?? ERROR_CODES[code].status;
    this.detail = options.detail;
    this.reason = options.reason;
    this.headers = options.headers;
    this.extensions = options.extensions;
  }

  get title(): string {
    return ERROR_CODES[this.code].title;
  }
}

export function isBffError(err: unknown): err is BffError {
  return err instanceof BffError;
}

/** Configuration errors carry every problem at once, each with the variable's name. */
export class ConfigError extends BffError {
  readonly problems: readonly { variable: string; message: string }[];
  constructor(problems: readonly { variable: string; message: string }[]) {
    super('BFF_CONFIG_INVALID', { detail: problems.map((p) => `${p.variable}: ${p.message}`).join('; ') });
    this.name = 'ConfigError';
    this.problems = problems;
  }

  override toString(): string {
    return [
      `fapi-bff: configuration is invalid (${this.problems.length} problem${this.problems.length === 1 ? '' : 's'}):`,
      ...this.problems.map((p) => `  - ${p.variable}: ${p.message}`),
    ].join('\n');
  }
}
