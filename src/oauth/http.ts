import type { CustomFetch } from 'openid-client';

/**
 * The fetch every IdP call goes through. openid-client applies no response-size limit
 * (TEST-IDP-NOTES.md), so a hostile or broken IdP could make us buffer without bound: cap it.
 * Timeouts come from openid-client's own `timeout` (an AbortSignal per request).
 */
export const MAX_IDP_RESPONSE_BYTES = 512 * 1024;

export type IdpFetch = CustomFetch;

export function sizeCappedFetch(limit = MAX_IDP_RESPONSE_BYTES): IdpFetch {
  return async (url, init) => {
    const response = await fetch(url, init as RequestInit);
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
