/**
 * What this instance knows about the IdP's availability, from the calls it makes anyway: metadata
 * and JWKS refreshes and every authenticated call (PAR, token, refresh, revocation, introspection).
 * An answer from the IdP, even an OAuth error (RFC 6749 §5.2), means it is reachable; only no answer
 * (connection failure, timeout) or a 5xx counts as a failure. Readiness is judged from this record by
 * `evaluateReadiness` (observability/readiness.ts).
 */
export type IdpCallSource =
  'metadata' | 'jwks' | 'par' | 'token' | 'refresh' | 'revocation' | 'introspection' | 'client_credentials';

export interface IdpHealthSnapshot {
  /** Epoch ms of the last successful metadata refresh (startup discovery included). */
  readonly metadataRefreshedAt: number;
  /** Epoch ms of the last successful JWKS fetch, if the JWKS was ever fetched. */
  readonly jwksRefreshedAt: number | undefined;
  /** The most recent IdP call of any kind, or undefined before the first. */
  readonly lastCall:
    { readonly source: IdpCallSource; readonly ok: boolean; readonly at: number } | undefined;
  /** Epoch ms of the last call that reached the IdP. */
  readonly lastSuccessAt: number;
}

export class IdpHealth {
  #metadataRefreshedAt: number;
  #jwksRefreshedAt: number | undefined;
  #lastCall: IdpHealthSnapshot['lastCall'];
  #lastSuccessAt: number;

  constructor(private readonly clock: () => number = Date.now) {
    this.#metadataRefreshedAt = clock();
    this.#lastSuccessAt = this.#metadataRefreshedAt;
  }

  record(source: IdpCallSource, ok: boolean): void {
    const at = this.clock();
    this.#lastCall = { source, ok, at };
    if (!ok) return;
    this.#lastSuccessAt = at;
    if (source === 'metadata') this.#metadataRefreshedAt = at;
    if (source === 'jwks') this.#jwksRefreshedAt = at;
  }

  snapshot(): IdpHealthSnapshot {
    return {
      metadataRefreshedAt: this.#metadataRefreshedAt,
      jwksRefreshedAt: this.#jwksRefreshedAt,
      lastCall: this.#lastCall,
      lastSuccessAt: this.#lastSuccessAt,
    };
  }
}
