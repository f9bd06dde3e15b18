import type { CustomFetch } from 'openid-client';
import { Agent, type Dispatcher, fetch as undiciFetch } from 'undici';
import type { TlsConfig } from '../config/types.js';

/**
 * The fetch every IdP call goes through. openid-client applies no response-size limit
 * (TEST-IDP-NOTES.md), so a hostile or broken IdP could make us buffer without bound: cap it.
 * Timeouts come from openid-client's own `timeout` (an AbortSignal per request).
 */
export const MAX_IDP_RESPONSE_BYTES = 512 * 1024;

export type IdpFetch = CustomFetch;

/**
 * The TLS client of IdP calls. Node 20's fetch cannot present a client certificate without an undici
 * Agent (TEST-IDP-NOTES.md): with MTLS_CERT the certificate goes to every IdP connection (RFC 8705
 * §2; openid-client sends PAR, token and revocation to the mtls_endpoint_aliases). Certificate
 * verification stays on; MS_BFF_TLS_CA only adds trust anchors.
 */
export function tlsDispatcher(tls: TlsConfig): Dispatcher | undefined {
  if (!tls.cert && !tls.ca) return undefined;
  return new Agent({
    connect: {
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
      minVersion: 'TLSv1.2',
    },
  });
}

export function sizeCappedFetch(limit = MAX_IDP_RESPONSE_BYTES, dispatcher?: Dispatcher): IdpFetch {
  return async (url, init) => {
    const response = dispatcher
      ? ((await undiciFetch(url, { ...(init as object), dispatcher } as Parameters<
          typeof undiciFetch
        >[1])) as unknown as Response)
      : await fetch(url, init as RequestInit);
    const declared = Number(response.headers.get('content-length') ?? '0');
    if (declared > limit) {
      await response.body?.cancel();
      throw new ResponseTooLargeError(limit);
    }
    if (!response.body) return response;
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel();
        throw new ResponseTooLargeError(limit);
      }
      chunks.push(value);
    }
    return new Response(total === 0 ? null : Buffer.concat(chunks), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

export class ResponseTooLargeError extends Error {
  constructor(limit: number) {
    super(`IdP response larger than ${limit} bytes`);
    this.name = 'ResponseTooLargeError';
  }
}
