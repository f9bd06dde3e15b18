import { BffError } from '../errors.js';
import type { DpopKey } from '../dpop/client.js';

/** What a client-credentials token is for: the scope asked for and, optionally, one RFC 8707 resource. */
export interface ClientTokenTarget {
  readonly scope: string | undefined;
  readonly resource: string | undefined;
}

/** A client-credentials access token as the proxy attaches it. Never leaves the server. */
export interface ClientToken {
  readonly accessToken: string;
  readonly tokenType: 'bearer' | 'dpop';
  /** Epoch milliseconds. */
  readonly expiresAt: number;
  /** The key a DPoP-bound token is bound to (RFC 9449 §5): every request with it needs a proof by it. */
  readonly dpopKey: DpopKey | undefined;
}

/** The one IdP call this cache needs (IdpClient.clientCredentials). */
export type ClientCredentialsGrant = (target: ClientTokenTarget) => Promise<{
  accessToken: string;
  tokenType: 'bearer' | 'dpop';
  expiresIn: number;
  dpopKey: DpopKey | undefined;
}>;

export interface ClientTokenEvents {
  clientToken(outcome: 'issued' | 'cached' | 'failure'): void;
}

/** At most this many distinct (scope, resource) pairs; routes are configured, so this is generous. */
const MAX_TARGETS = 256;

/**
 * The BFF's own access tokens (RFC 6749 §4.4 client credentials grant), one per (scope, resource)
 * — RFC 8707 §2: a token asked for one resource is audience-restricted to it, so each resource
 * gets its own. Renewed `skewSec` before expiry when used; concurrent callers share one request.
 *
 * Kept per process on purpose: it is the BFF's credential, not user state, so it need not be
 * shared, and keeping it out of the store keeps one more bearer credential out of Redis. With DPoP
 * the grant is made with the process's own client key (see IdpClient.clientCredentials).
 */
export class ClientTokens {
  private readonly tokens = new Map<string, ClientToken>();
  private readonly inflight = new Map<string, Promise<ClientToken>>();

  constructor(
    private readonly grant: ClientCredentialsGrant,
    private readonly events: ClientTokenEvents,
    private readonly skewSec: number,
    private readonly clock: () => number = Date.now,
  ) {}

  async get(target: ClientTokenTarget): Promise<ClientToken> {
    const id = `${target.resource ?? ''} ${target.scope ?? ''}`;
    const cached = this.tokens.get(id);
    if (cached && cached.expiresAt - this.skewSec * 1000 > this.clock()) {
      this.events.clientToken('cached');
      return cached;
    }
    let pending = this.inflight.get(id);
    if (!pending) {
      pending = this.issue(id, target).finally(() => this.inflight.delete(id));
      this.inflight.set(id, pending);
    }
    return pending;
  }

  /**
   * Forget a token the resource server refused (RFC 6750 §3.1 `invalid_token`): the next call asks
   * for a new one. Only that exact token is dropped, so a newer one a sibling request got stays.
   */
  invalidate(target: ClientTokenTarget, accessToken: string): void {
    const id = `${target.resource ?? ''} ${target.scope ?? ''}`;
    if (this.tokens.get(id)?.accessToken === accessToken) this.tokens.delete(id);
  }

  private async issue(id: string, target: ClientTokenTarget): Promise<ClientToken> {
    let response: Awaited<ReturnType<ClientCredentialsGrant>>;
    try {
      response = await this.grant(target);
    } catch (err) {
      this.events.clientToken('failure');
      throw err;
    }
    if (!(response.expiresIn > 0)) {
      this.events.clientToken('failure');
      throw new BffError('BFF_TOKEN_RESPONSE_INVALID', { reason: 'client_token_expires_in' });
    }
    const token: ClientToken = {
      accessToken: response.accessToken,
      tokenType: response.tokenType,
      expiresAt: this.clock() + response.expiresIn * 1000,
      dpopKey: response.tokenType === 'dpop' ? response.dpopKey : undefined,
    };
    if (!this.tokens.has(id) && this.tokens.size >= MAX_TARGETS) {
      this.tokens.delete(this.tokens.keys().next().value as string);
    }
    this.tokens.set(id, token);
    this.events.clientToken('issued');
    return token;
  }
}
