import { sizeCappedFetch } from '../oauth/http.js';

/** An RFC 7591 §3.2.2 / RFC 7592 error response, shown with its code and description. */
export class RegistrationError extends Error {
  constructor(
    readonly status: number,
    readonly error: string | undefined,
    readonly description: string | undefined,
  ) {
    super(
      error
        ? `the IdP refused (HTTP ${status}): ${error}${description ? ` — ${description}` : ''}`
        : `the IdP answered HTTP ${status}`,
    );
  }
}

type Method = 'POST' | 'GET' | 'PUT' | 'DELETE';

/**
 * One registration request: JSON in, JSON out, Bearer token (the initial access token for POST,
 * RFC 7591 §3; the registration access token for management, RFC 7592 §2).
 */
export async function registrationRequest(
  method: Method,
  url: string,
  token: string | undefined,
  body?: Record<string, unknown>,
  timeoutMs = 10_000,
): Promise<Record<string, unknown> | undefined> {
  const fetchImpl = sizeCappedFetch();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body) headers['content-type'] = 'application/json';
  const res = await fetchImpl(url, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs),
  });
  // RFC 7592 §2.3: a successful delete is 204 No Content.
  if (method === 'DELETE' && res.status === 204) return undefined;
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    throw new RegistrationError(
      res.status,
      typeof json?.error === 'string' ? json.error : undefined,
      typeof json?.error_description === 'string' ? json.error_description : undefined,
    );
  }
  if (!json || typeof json !== 'object')
    throw new RegistrationError(res.status, 'invalid_response', 'not JSON');
  return json;
}
