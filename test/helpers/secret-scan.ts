/**
 * The token scan's parts (issue 11 item 3): what the IdP issued, per client, taken from the IdP
 * itself (oidc-provider events and the authorization responses it sends), so a scan that finds
 * nothing is known to have looked for something; a browser that records every response of the BFF;
 * and the search itself, over whole values and over the payload and signature segments of JWTs.
 */
import { createPrivateKey, type JsonWebKey } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { strict as assert } from 'node:assert';
import { decodeJwt } from 'jose';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import {
  type ClientKey,
  freePort,
  LogSink,
  makeClientKey,
  type RunningBff,
  type StoreKind,
  startBff,
} from './bff-harness.js';
import { type RequestInit, TestBrowser, type TestResponse } from './test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from './upstream.js';

export type SecretKind =
  'access_token' | 'refresh_token' | 'id_token' | 'code' | 'jarm_response' | 'client_secret' | 'private_key';

export interface Secret {
  kind: SecretKind;
  /** The whole value, or one segment of it. */
  value: string;
  /** Which part: `whole`, `payload`, `signature`, `d`, `pem`. */
  part: string;
}

/** What the IdP issued to one client. */
export class Issued {
  readonly access = new Set<string>();
  readonly refresh = new Set<string>();
  readonly id = new Set<string>();
  readonly codes = new Set<string>();
  /** JARM responses (JWS or JWE) as the IdP sent them to the browser. */
  readonly jarm = new Set<string>();
  /** The `state` of each pushed authorization request (to forge an IdP error response). */
  readonly states: string[] = [];
}

type Ctx = {
  body?: unknown;
  oidc?: { client?: { clientId: string }; params?: Record<string, unknown> };
};

/**
 * Records, per client id, every token, code and state the IdP hands out. Install before the IdP
 * starts with `wrapHandler` (for JARM responses, which only exist on the wire) and `watch(idp)`.
 */
export class IdpHarvest {
  readonly #byClient = new Map<string, Issued>();

  of(clientId: string): Issued {
    let issued = this.#byClient.get(clientId);
    if (!issued) {
      issued = new Issued();
      this.#byClient.set(clientId, issued);
    }
    return issued;
  }

  watch(idp: DevIdp): void {
    // oidc-provider's typings list the events without their arguments.
    const on = idp.provider.on.bind(idp.provider) as unknown as (
      event: string,
      listener: (ctx: Ctx, out: Record<string, unknown>) => void,
    ) => void;
    on('grant.success', (ctx: Ctx) => {
      const clientId = ctx.oidc?.client?.clientId;
      const body = ctx.body as Record<string, unknown> | undefined;
      if (!clientId || !body) return;
      const issued = this.of(clientId);
      if (typeof body.access_token === 'string') issued.access.add(body.access_token);
      if (typeof body.refresh_token === 'string') issued.refresh.add(body.refresh_token);
      if (typeof body.id_token === 'string') issued.id.add(body.id_token);
    });
    on('authorization.success', (ctx: Ctx, out: Record<string, unknown>) => {
      const clientId = ctx.oidc?.client?.clientId;
      if (clientId && typeof out.code === 'string') this.of(clientId).codes.add(out.code);
    });
    on('pushed_authorization_request.success', (ctx: Ctx) => {
      const clientId = ctx.oidc?.client?.clientId;
      const state = ctx.oidc?.params?.state;
      if (clientId && typeof state === 'string') this.of(clientId).states.push(state);
    });
  }

  /**
   * For DevIdpOptions.wrapHandler: JARM responses (`response=` in a redirect's Location or in a
   * form_post page) as the browser gets them, attributed by their `aud` (signed responses; an
   * encrypted one names no client outside its ciphertext and is kept in `unattributedJarm`).
   */
  wrapHandler = (
    handler: (req: IncomingMessage, res: ServerResponse) => void,
  ): ((req: IncomingMessage, res: ServerResponse) => void) => {
    return (req, res) => {
      const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
      res.end = ((...args: unknown[]) => {
        const location = res.getHeader('location');
        const chunk = args[0];
        const body = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString() : '';
        for (const text of [typeof location === 'string' ? location : '', body]) {
          for (const m of text.matchAll(
            /[?#&]response=([A-Za-z0-9_.-]+)|name="response" value="([A-Za-z0-9_.-]+)"/g,
          ))
            this.#addJarm(m[1] ?? m[2] ?? '');
        }
        return end(...args);
      }) as typeof res.end;
      handler(req, res);
    };
  };

  readonly unattributedJarm = new Set<string>();

  #addJarm(value: string): void {
    if (!value) return;
    try {
      const { aud } = decodeJwt(value);
      for (const clientId of [aud].flat())
        if (typeof clientId === 'string') this.of(clientId).jarm.add(value);
    } catch {
      this.unattributedJarm.add(value);
    }
  }
}

/** base64url segments of a compact JWS/JWE worth searching for alone (not the shared header). */
function segments(kind: SecretKind, token: string): Secret[] {
  const parts = token.split('.');
  if (parts.length === 3) {
    return [
      { kind, value: parts[1] ?? '', part: 'payload' },
      { kind, value: parts[2] ?? '', part: 'signature' },
    ].filter((s) => s.value.length >= 16);
  }
  if (parts.length === 5) {
    // JWE: encrypted key, iv, ciphertext, tag.
    return parts
      .slice(1)
      .map((value, i) => ({ kind, value, part: ['encrypted_key', 'iv', 'ciphertext', 'tag'][i] ?? '' }))
      .filter((s) => s.value.length >= 16);
  }
  return [];
}

/**
 * The first and last 16 characters of a random value (an opaque token, a code, a signature, a key):
 * a log that truncates a token still leaks most of it. Not for JWT headers or payloads, whose
 * beginnings are the same base64 of the same JSON in every token.
 */
export function ends(secret: Secret): Secret[] {
  const { value } = secret;
  if (value.length < 24) return [];
  return [
    { ...secret, value: value.slice(0, 16), part: `${secret.part} (first 16)` },
    { ...secret, value: value.slice(-16), part: `${secret.part} (last 16)` },
  ];
}

/** Every searchable form of the issued values: whole, JWT segments, and the ends of random ones. */
export function secretsOf(issued: Issued): Secret[] {
  const out: Secret[] = [];
  const add = (kind: SecretKind, values: Iterable<string>) => {
    for (const value of values) {
      const whole: Secret = { kind, value, part: 'whole' };
      const parts = segments(kind, value);
      out.push(whole, ...parts);
      if (parts.length === 0) out.push(...ends(whole));
      else out.push(...parts.filter((p) => p.part !== 'payload').flatMap(ends));
    }
  };
  add('access_token', issued.access);
  add('refresh_token', issued.refresh);
  add('id_token', issued.id);
  add('code', issued.codes);
  add('jarm_response', issued.jarm);
  return out;
}

/** A private key as the scan looks for it: its JWK `d` and the base64 body lines of its PKCS#8 PEM. */
export function privateKeySecrets(jwk: JsonWebKey & { kid?: string }): Secret[] {
  const out: Secret[] = [];
  if (typeof jwk.d === 'string') {
    const d: Secret = { kind: 'private_key', value: jwk.d, part: 'd' };
    out.push(d, ...ends(d));
  }
  const pem = createPrivateKey({ key: jwk, format: 'jwk' })
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
  const body = pem
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');
  // Any 40-character run of the DER's base64 (a log that wrapped the PEM differently still matches).
  for (let i = 0; i + 40 <= body.length; i += 40)
    out.push({ kind: 'private_key', value: body.slice(i, i + 40), part: 'pem' });
  return out;
}

/**
 * The one exception to the scan (README, "SPAs never see a token"): the ID token as `id_token_hint`
 * in the end-session URL a logout answers with (OIDC RP-Initiated Logout 1.0 §2,
 * https://openid.net/specs/openid-connect-rpinitiated-1_0.html#RPLogout). For a logout response
 * (302 or JSON `redirectTo`): asserts the hint is an ID token the IdP issued to this client and
 * masks it in the response's text (`hinted`). A response as a haystack, with where it came from.
 */
export function responseHaystack(
  r: SeenResponse,
  issued: Issued,
): { where: string; text: string; hinted: boolean } {
  const where = `${r.method} ${r.url.pathname} → ${r.status}`;
  const text = responseText(r);
  if (r.url.pathname !== '/auth/logout') return { where, text, hinted: false };
  const target =
    r.status === 302
      ? r.headers.find(([k]) => k === 'location')?.[1]
      : (JSON.parse(r.body) as { redirectTo?: string }).redirectTo;
  const hint = target ? new URL(target).searchParams.get('id_token_hint') : null;
  assert.ok(hint, `the logout's end-session URL carries id_token_hint (${r.status})`);
  assert.ok(issued.id.has(hint), 'id_token_hint is an ID token the IdP issued to this client');
  const masked = text.split(`id_token_hint=${hint}`).join('id_token_hint=(the exception)');
  return { where, text: masked, hinted: true };
}

/** Every log line as a haystack. */
export function logHaystacks(logs: LogSink): { where: string; text: string }[] {
  return logs.lines.map((line, i) => ({ where: `log line ${i + 1}`, text: line }));
}

export interface Finding {
  kind: SecretKind;
  part: string;
  where: string;
}

/** Every secret found in every haystack. */
export function scan(
  haystacks: readonly { where: string; text: string }[],
  secrets: readonly Secret[],
): Finding[] {
  const findings: Finding[] = [];
  for (const { where, text } of haystacks)
    for (const s of secrets)
      if (s.value && text.includes(s.value)) findings.push({ kind: s.kind, part: s.part, where });
  return findings;
}

/** One response as the browser received it: status line, every header (Set-Cookie each), body. */
export interface SeenResponse {
  method: string;
  url: URL;
  status: number;
  headers: [string, string][];
  body: string;
}

export function responseText(r: SeenResponse): string {
  return [`HTTP ${r.status}`, ...r.headers.map(([k, v]) => `${k}: ${v}`), '', r.body].join('\n');
}

/** A TestBrowser that keeps every response from the origins given (the BFF's). */
export class RecordingBrowser extends TestBrowser {
  readonly seen: SeenResponse[] = [];
  readonly #origins: Set<string>;

  constructor(origins: string[]) {
    super();
    this.#origins = new Set(origins.map((o) => new URL(o).origin));
  }

  override async request(url: string | URL, init: RequestInit = {}): Promise<TestResponse> {
    const res = await super.request(url, init);
    const target = new URL(url);
    if (this.#origins.has(target.origin)) {
      const headers: [string, string][] = [...res.headers].filter(([k]) => k !== 'set-cookie');
      for (const c of res.headers.getSetCookie()) headers.push(['set-cookie', c]);
      this.seen.push({
        method: (init.method ?? 'GET').toUpperCase(),
        url: target,
        status: res.status,
        headers,
        body: await res.text(),
      });
    }
    return res;
  }
}

/**
 * Every response a server sends, as sent (status, each header, body): for pages a real browser
 * leaves before their body can be read back from it (the relay page's script navigates on at once).
 * On loopback this is byte for byte what the browser received.
 */
export function tapResponses(server: Server): SeenResponse[] {
  const seen: SeenResponse[] = [];
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let status = 0;
    const headers: [string, string][] = [];
    const keep = (chunk: unknown) => {
      if (typeof chunk === 'string' || chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
    };
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    res.writeHead = ((code: number, ...rest: unknown[]) => {
      status = code;
      const given = rest.find((r) => typeof r === 'object' && r !== null) as
        Record<string, string | string[] | number> | undefined;
      for (const [k, v] of Object.entries({ ...res.getHeaders(), ...given }))
        for (const value of [v].flat())
          if (value !== undefined) headers.push([k.toLowerCase(), String(value)]);
      return writeHead(code, ...rest);
    }) as typeof res.writeHead;
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      keep(chunk);
      return write(chunk, ...rest);
    }) as typeof res.write;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      keep(chunk);
      if (status === 0) {
        status = res.statusCode;
        for (const [k, v] of Object.entries(res.getHeaders()))
          for (const value of [v].flat())
            if (value !== undefined) headers.push([k.toLowerCase(), String(value)]);
      }
      seen.push({
        method: req.method ?? 'GET',
        url: new URL(req.url ?? '/', 'http://tap'),
        status,
        headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      return end(chunk, ...rest);
    }) as typeof res.end;
  });
  return seen;
}

/** One BFF under the scan, with its own client at the IdP. */
export interface ScanTarget {
  clientId: string;
  port: number;
  key: ClientKey;
  store: StoreKind;
  dpop: boolean;
  /** Moves the BFF's clock forward (access tokens live 300 s at the dev IdP). */
  skewMs: number;
  /** Every line the BFF logs, at trace, access log on. */
  logs: LogSink;
  bff?: RunningBff;
  /** DPoP private keys of the sessions, read from the session store. */
  dpopKeys: JsonWebKey[];
}

/** A scan target's fields that are the same for every test: a free port, a fresh key, no skew. */
export async function newScanTarget(
  clientId: string,
): Promise<Pick<ScanTarget, 'clientId' | 'port' | 'key' | 'skewMs' | 'logs' | 'dpopKeys'>> {
  return {
    clientId,
    port: await freePort(),
    key: await makeClientKey('ES256'),
    skewMs: 0,
    logs: new LogSink(),
    dpopKeys: [],
  };
}

export interface ScanStack {
  idp: DevIdp;
  upstream: RecordingUpstream;
  close(): Promise<void>;
}

/**
 * The scanned stack: one dev IdP with every target's client (`client`: its metadata), whose issued
 * values `harvest` records; one recording upstream; and per target a BFF logging at trace with the
 * access log on into `target.logs`, on the target's store and clock, routing `echo` to the upstream,
 * with DPoP when the target asks for it; `bff` adds the target's key (if any) and variables.
 */
export async function startScanStack<T extends ScanTarget>(
  targets: readonly T[],
  harvest: IdpHarvest,
  setup: {
    client(target: T): Record<string, unknown>;
    bff(target: T): { key?: ClientKey; env: Record<string, string> };
  },
): Promise<ScanStack> {
  const idp = await startDevIdp({
    clients: targets.map((t) => setup.client(t)),
    wrapHandler: harvest.wrapHandler,
  });
  harvest.watch(idp);
  let upstream: RecordingUpstream | undefined;
  const close = async () => {
    for (const t of targets) await t.bff?.close();
    await upstream?.close();
    await idp.close();
  };
  try {
    upstream = await startRecordingUpstream();
    for (const t of targets) {
      const { key, env } = setup.bff(t);
      t.bff = await startBff({
        port: t.port,
        issuer: idp.issuer,
        clientId: t.clientId,
        ...(key ? { key } : {}),
        storeKind: t.store,
        routes: { echo: upstream.url },
        logs: t.logs,
        logLevel: 'trace',
        clock: () => Date.now() + t.skewMs,
        env: { MS_BFF_ACCESS_LOG: 'true', ...env, ...(t.dpop ? { MS_BFF_DPOP_ENABLED: 'true' } : {}) },
      });
    }
  } catch (err) {
    // What started is closed: the test's `after` has no handle on it.
    await close().catch(() => undefined);
    throw err;
  }
  return { idp, upstream, close };
}

/** Keeps the DPoP private key of the session behind `cookie` (from the session store) to search for. */
export async function keepDpopKey(target: ScanTarget, cookie: string): Promise<void> {
  const session = await target.bff?.services.sessions.load(cookie);
  if (session?.data.dpop) target.dpopKeys.push(session.data.dpop.jwk as JsonWebKey);
}

/**
 * What the scan looks for in a target's output: what the IdP issued to it, its sessions' DPoP keys
 * and its client credential (`clientSecret`, else its private key).
 */
export function targetSecrets(issued: Issued, target: ScanTarget, clientSecret?: string): Secret[] {
  const secret: Secret = { kind: 'client_secret', value: clientSecret ?? '', part: 'whole' };
  return [
    ...secretsOf(issued),
    ...target.dpopKeys.flatMap((k) => privateKeySecrets(k)),
    ...(clientSecret !== undefined
      ? [secret, ...ends(secret)]
      : privateKeySecrets(target.key.privateJwk as JsonWebKey)),
  ];
}
