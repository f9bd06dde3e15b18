/**
 * The readiness policy, as a function of what the instance knows (no I/O of its own beyond the
 * checks it is given), so the public `/readyz` and a detailed admin report share one judgement.
 *
 * Policy (README, "Health and shutdown"):
 * - the session store must answer a ping;
 * - the IdP counts as down when the most recent call to it (metadata or JWKS refresh, PAR, token,
 *   refresh, revocation, introspection) got no answer or a 5xx, or when nothing reached it for
 *   longer than `maxSilenceSec` (three metadata refresh intervals: refreshes keep failing);
 * - with `requireIdp` (the default) an IdP that is down makes the instance not ready; without it,
 *   the report still says so but the instance stays ready (sessions with valid tokens keep working).
 */

/** Structural view of the IdP record (oauth/idp-health.ts); observability imports no domain code. */
export interface IdpHealthView {
  readonly metadataRefreshedAt: number;
  readonly jwksRefreshedAt: number | undefined;
  readonly lastCall: { readonly source: string; readonly ok: boolean; readonly at: number } | undefined;
  readonly lastSuccessAt: number;
}

export interface ReadinessInputs {
  readonly now: number;
  readonly store: { readonly kind: string; readonly ok: boolean };
  readonly idp: { readonly issuer: string; readonly health: IdpHealthView };
  readonly maxSilenceSec: number;
  readonly requireIdp: boolean;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: {
    readonly store: { readonly ok: boolean; readonly kind: string };
    readonly idp: {
      readonly ok: boolean;
      readonly issuer: string;
      readonly required: boolean;
      readonly metadata_age_seconds: number;
      readonly jwks_age_seconds: number | null;
      readonly last_call_failed: boolean;
      readonly last_call_source: string | null;
      readonly last_success_age_seconds: number;
      readonly reason?: 'last_call_failed' | 'silent_too_long';
    };
  };
}

const seconds = (now: number, at: number) => Math.max(0, Math.round((now - at) / 1000));

export function evaluateReadiness(input: ReadinessInputs): ReadinessReport {
  const { now, idp } = input;
  const h = idp.health;
  const lastCallFailed = h.lastCall !== undefined && !h.lastCall.ok;
  const silence = seconds(now, h.lastSuccessAt);
  const reason = lastCallFailed
    ? ('last_call_failed' as const)
    : silence > input.maxSilenceSec
      ? ('silent_too_long' as const)
      : undefined;
  const idpOk = reason === undefined;
  return {
    ready: input.store.ok && (idpOk || !input.requireIdp),
    checks: {
      store: { ok: input.store.ok, kind: input.store.kind },
      idp: {
        ok: idpOk,
        issuer: idp.issuer,
        required: input.requireIdp,
        metadata_age_seconds: seconds(now, h.metadataRefreshedAt),
        jwks_age_seconds: h.jwksRefreshedAt === undefined ? null : seconds(now, h.jwksRefreshedAt),
        last_call_failed: lastCallFailed,
        last_call_source: h.lastCall?.source ?? null,
        last_success_age_seconds: silence,
        ...(reason ? { reason } : {}),
      },
    },
  };
}
