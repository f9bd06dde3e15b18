/**
 * A cookie-keeping, redirect-following HTTP client that behaves enough like a browser for end-to-end
 * tests of the BFF and the IdPs it talks to, without a real browser.
 *
 * Deviations from a browser, on purpose (all servers in tests are plain HTTP on 127.0.0.1):
 * - One cookie jar per origin host (host:port). Real browsers share cookies between ports of a host
 *   (RFC 6265 §8.5); per-port jars keep the IdP's and the BFF's cookies apart so tests can inspect each.
 * - Cookies are sent regardless of the Secure attribute, since tests run over http; `__Host-` cookies
 *   are stored as received. Attributes are kept so tests can assert them instead.
 * - The Domain attribute is stored but not used for matching (one host per jar); Path is honoured
 *   (RFC 6265 §5.1.4), as are Max-Age and Expires, including deletion (§5.3).
 * - SameSite is not enforced: every server is on 127.0.0.1, so every request is same-site anyway.
 * - Navigations send Sec-Fetch-Site/Mode/Dest and form posts send Origin, as browsers do; scripts do
 *   not run, except that an auto-submitting form (oidc-provider's form_post pages) is submitted.
 */
import { type Cookie, type Dispatcher, fetch, getSetCookies, Headers, type Response } from 'undici';

export interface StoredCookie {
  name: string;
  value: string;
  path: string;
  domain: string | undefined;
  httpOnly: boolean;
  secure: boolean;
  sameSite: 'Strict' | 'Lax' | 'None' | undefined;
  /** Epoch milliseconds; undefined for a session cookie. */
  expiresAt: number | undefined;
  /** The raw attributes undici did not interpret (e.g. Partitioned). */
  unparsed: string[];
}

export interface RequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | URLSearchParams | Uint8Array;
  /** Default: the browser's timeout. */
  timeoutMs?: number;
}

export interface NavigateOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | URLSearchParams;
  /** Default 20. */
  maxHops?: number;
  /** Checked for every redirect or form target; when true, that URL is returned unrequested. */
  stopWhen?: (url: URL) => boolean;
  /** The page the navigation starts from (for Sec-Fetch-Site and Origin); none means typed in. */
  from?: URL;
  /** Submit auto-submitting forms (oidc-provider's form_post and logout pages); default true. */
  followAutoSubmit?: boolean;
}

export interface NavigateResult {
  /** The last response received (a redirect when stopped by stopWhen). */
  response: TestResponse;
  /** The final URL: the last one requested, or the unrequested one stopWhen matched. */
  url: URL;
  /** Every URL requested, in order. */
  hops: URL[];
  /** True when stopWhen matched: `url` was not requested. */
  stopped: boolean;
  /** When stopWhen matched a form submission: the request that was not sent. */
  pending?: { method: string; body?: string | URLSearchParams };
}

export interface FormSelector {
  /** Picks the first form whose resolved action URL matches; default the first form. */
  action?: RegExp;
  maxHops?: number;
  stopWhen?: (url: URL) => boolean;
}

export interface ParsedForm {
  action: URL;
  method: string;
  id: string | undefined;
  /** Successful controls (hidden, text, password, checked boxes, textareas, selects). */
  fields: [string, string][];
}

export class TestResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly url: URL;
  /** The undici response; its body is consumed by text()/json(). */
  readonly raw: Response;
  #text: Promise<string> | undefined;

  constructor(raw: Response, url: URL) {
    this.raw = raw;
    this.status = raw.status;
    this.headers = raw.headers;
    this.url = url;
  }

  /** The body, read once and cached. */
  text(): Promise<string> {
    this.#text ??= this.raw.text();
    return this.#text;
  }

  async json<T = unknown>(): Promise<T> {
    return JSON.parse(await this.text()) as T;
  }

  /** The Location header resolved against the request URL. */
  get location(): URL | undefined {
    const location = this.headers.get('location');
    return location === null ? undefined : new URL(location, this.url);
  }

  get isRedirect(): boolean {
    return this.status >= 300 && this.status < 400 && this.headers.has('location');
  }

  get setCookies(): Cookie[] {
    return getSetCookies(this.headers);
  }
}

function hostKey(origin: string | URL): string {
  return (typeof origin === 'string' ? new URL(origin) : origin).host;
}

/** RFC 6265 §5.1.4: the directory of the request path. */
function defaultPath(url: URL): string {
  const path = url.pathname;
  if (!path.startsWith('/') || path.lastIndexOf('/') === 0) return '/';
  return path.slice(0, path.lastIndexOf('/'));
}

/** RFC 6265 §5.1.4 path-match. */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

type Site = 'none' | 'same-origin' | 'same-site' | 'cross-site';
const SITE_RANK: Record<Site, number> = { none: 0, 'same-origin': 1, 'same-site': 2, 'cross-site': 3 };

/** Fetch Metadata §2.1, with "site" as scheme + host (all test hosts are IP literals). */
function siteRelation(from: URL | undefined, to: URL): Site {
  if (!from) return 'none';
  if (from.origin === to.origin) return 'same-origin';
  if (from.protocol === to.protocol && from.hostname === to.hostname) return 'same-site';
  return 'cross-site';
}

const DEFAULT_TIMEOUT_MS = 10_000;

export class TestBrowser {
  readonly #jars = new Map<string, Map<string, StoredCookie>>();
  readonly #dispatcher: Dispatcher | undefined;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly userAgent: string;

  constructor(
    options: { dispatcher?: Dispatcher; timeoutMs?: number; now?: () => number; userAgent?: string } = {},
  ) {
    this.#dispatcher = options.dispatcher;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#now = options.now ?? Date.now;
    this.userAgent = options.userAgent ?? 'fapi-bff-test-browser/1';
  }

  /** One hop: sends the jar's cookies, stores Set-Cookie, never follows redirects. */
  async request(url: string | URL, init: RequestInit = {}): Promise<TestResponse> {
    const target = new URL(url);
    const headers = new Headers({ 'user-agent': this.userAgent });
    for (const [name, value] of Object.entries(init.headers ?? {})) headers.set(name, value);
    const cookieHeader = this.#cookieHeader(target);
    if (cookieHeader && !headers.has('cookie')) headers.set('cookie', cookieHeader);
    const method = (init.method ?? 'GET').toUpperCase();
    const response = await fetch(target, {
      method,
      headers,
      body: method === 'GET' || method === 'HEAD' ? undefined : init.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(init.timeoutMs ?? this.#timeoutMs),
      ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
    });
    this.#store(target, getSetCookies(response.headers));
    return new TestResponse(response, target);
  }

  /** Follows redirects like a top-level browser navigation (RFC 9110 §15.4; 301/302/303 POST → GET). */
  async navigate(url: string | URL, opts: NavigateOptions = {}): Promise<NavigateResult> {
    const maxHops = opts.maxHops ?? 20;
    const followAutoSubmit = opts.followAutoSubmit ?? true;
    const hops: URL[] = [];
    let current = new URL(url);
    let method = (opts.method ?? 'GET').toUpperCase();
    let body: string | URLSearchParams | undefined = opts.body;
    let extraHeaders = opts.headers ?? {};
    // The page that started the current navigation: Origin and Sec-Fetch-Site are relative to it.
    let initiator = opts.from;
    // Fetch Metadata §2.1: "none" for a user-typed navigation, whatever the redirects; otherwise the
    // least related URL of the redirect chain, compared with the initiator.
    let site: Site = siteRelation(initiator, current);
    let response: TestResponse | undefined;

    for (;;) {
      if (hops.length >= maxHops)
        throw new Error(`navigate: more than ${maxHops} hops: ${hops.join(' -> ')}`);
      const headers: Record<string, string> = {
        accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
        'sec-fetch-site': site,
        'sec-fetch-mode': 'navigate',
        'sec-fetch-dest': 'document',
        ...extraHeaders,
      };
      if (method === 'POST' && initiator && !('origin' in headers)) headers.origin = initiator.origin;
      if (body instanceof URLSearchParams && !('content-type' in headers)) {
        headers['content-type'] = 'application/x-www-form-urlencoded';
      }
      hops.push(current);
      response = await this.request(current, { method, headers, body });

      let next: URL | undefined;
      let nextBody: string | URLSearchParams | undefined;
      let nextMethod = 'GET';
      let submitted = false;
      if (response.isRedirect) {
        next = response.location!;
        await response.text();
        if (response.status === 307 || response.status === 308) {
          nextMethod = method;
          nextBody = body;
        }
      } else if (followAutoSubmit && response.status === 200 && isAutoSubmitPage(await response.text())) {
        const form = parseForms(await response.text(), current)[0];
        if (form) {
          submitted = true;
          next = form.action;
          nextMethod = form.method;
          const fields = new URLSearchParams(form.fields);
          if (nextMethod === 'GET') {
            next = new URL(next);
            next.search = fields.toString();
          } else {
            nextBody = fields;
          }
        }
      }
      if (!next) return { response, url: current, hops, stopped: false };
      if (opts.stopWhen?.(next)) {
        return {
          response,
          url: next,
          hops,
          stopped: true,
          ...(nextMethod === 'GET'
            ? {}
            : { pending: { method: nextMethod, ...(nextBody ? { body: nextBody } : {}) } }),
        };
      }
      if (submitted) {
        // A form submission is a new navigation, started by the page that holds the form.
        initiator = current;
        site = siteRelation(initiator, next);
      } else if (initiator) {
        const relation = siteRelation(initiator, next);
        if (SITE_RANK[relation] > SITE_RANK[site]) site = relation;
      }
      current = next;
      method = nextMethod;
      body = nextBody;
      // Request headers set by the caller belong to the first request only.
      extraHeaders = {};
    }
  }

  /**
   * Fills in and submits a form from `html` (the first one, or the first whose action matches), then
   * follows redirects. Fields given here override the form's own values.
   */
  async submitForm(
    html: string,
    baseUrl: URL,
    fields: Record<string, string> = {},
    selector: FormSelector = {},
  ): Promise<NavigateResult> {
    const forms = parseForms(html, baseUrl);
    const form = selector.action ? forms.find((f) => selector.action!.test(f.action.href)) : forms[0];
    if (!form) {
      throw new Error(
        `submitForm: no form${selector.action ? ` with action ${selector.action}` : ''} on ${baseUrl}`,
      );
    }
    const values = new URLSearchParams(form.fields.filter(([name]) => !(name in fields)));
    for (const [name, value] of Object.entries(fields)) values.set(name, value);
    const navigateOptions: NavigateOptions = {
      from: baseUrl,
      ...(selector.stopWhen ? { stopWhen: selector.stopWhen } : {}),
      ...(selector.maxHops ? { maxHops: selector.maxHops } : {}),
    };
    if (form.method === 'GET') {
      const target = new URL(form.action);
      target.search = values.toString();
      return this.navigate(target, navigateOptions);
    }
    return this.navigate(form.action, { ...navigateOptions, method: 'POST', body: values });
  }

  cookie(origin: string | URL, name: string): StoredCookie | undefined {
    this.#expire(hostKey(origin));
    const matches = [...(this.#jars.get(hostKey(origin))?.values() ?? [])].filter((c) => c.name === name);
    // Prefer the broadest path, the one a test most likely means.
    return matches.sort((a, b) => a.path.length - b.path.length)[0];
  }

  cookies(origin: string | URL): StoredCookie[] {
    this.#expire(hostKey(origin));
    return [...(this.#jars.get(hostKey(origin))?.values() ?? [])];
  }

  /** Plants or overwrites a cookie (Path=/, session), e.g. to simulate a forged or stale cookie. */
  setCookie(origin: string | URL, name: string, value: string, attributes: Partial<StoredCookie> = {}): void {
    const cookie: StoredCookie = {
      name,
      value,
      path: '/',
      domain: undefined,
      httpOnly: false,
      secure: false,
      sameSite: undefined,
      expiresAt: undefined,
      unparsed: [],
      ...attributes,
    };
    this.#jar(hostKey(origin)).set(`${cookie.name};${cookie.path}`, cookie);
  }

  deleteCookie(origin: string | URL, name: string): void {
    const jar = this.#jars.get(hostKey(origin));
    for (const [key, cookie] of jar ?? []) if (cookie.name === name) jar?.delete(key);
  }

  clearCookies(origin?: string | URL): void {
    if (origin === undefined) this.#jars.clear();
    else this.#jars.delete(hostKey(origin));
  }

  #jar(key: string): Map<string, StoredCookie> {
    let jar = this.#jars.get(key);
    if (!jar) {
      jar = new Map();
      this.#jars.set(key, jar);
    }
    return jar;
  }

  #expire(key: string): void {
    const jar = this.#jars.get(key);
    const now = this.#now();
    for (const [id, cookie] of jar ?? [])
      if (cookie.expiresAt !== undefined && cookie.expiresAt <= now) jar?.delete(id);
  }

  /** RFC 6265 §5.3 storage model, reduced to one host per jar. */
  #store(url: URL, cookies: Cookie[]): void {
    if (cookies.length === 0) return;
    const jar = this.#jar(url.host);
    const now = this.#now();
    for (const c of cookies) {
      const path = c.path?.startsWith('/') ? c.path : defaultPath(url);
      let expiresAt: number | undefined;
      // Max-Age wins over Expires (§5.3 step 3).
      if (c.maxAge !== undefined) expiresAt = c.maxAge <= 0 ? 0 : now + c.maxAge * 1000;
      else if (c.expires !== undefined)
        expiresAt = c.expires instanceof Date ? c.expires.getTime() : c.expires;
      const key = `${c.name};${path}`;
      if (expiresAt !== undefined && expiresAt <= now) {
        jar.delete(key);
        continue;
      }
      jar.set(key, {
        name: c.name,
        value: c.value,
        path,
        domain: c.domain,
        httpOnly: c.httpOnly === true,
        secure: c.secure === true,
        sameSite: c.sameSite,
        expiresAt,
        unparsed: c.unparsed ?? [],
      });
    }
  }

  /** RFC 6265 §5.4: matching cookies, longer paths first. Secure is deliberately ignored (see top). */
  #cookieHeader(url: URL): string | undefined {
    this.#expire(url.host);
    const jar = this.#jars.get(url.host);
    if (!jar) return undefined;
    const matching = [...jar.values()]
      .filter((c) => pathMatches(url.pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.length ? matching.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }
}

/** oidc-provider's form_post and "no session" logout pages submit their form from a script. */
function isAutoSubmitPage(html: string): boolean {
  return /<script[^>]*>[^<]*\.submit\(\)/i.test(html) && /<form\b/i.test(html);
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'" };

function decodeEntities(value: string): string {
  return value.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, entity: string) => {
    const lower = entity.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(Number.parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(Number.parseInt(lower.slice(1), 10));
    return ENTITIES[lower] ?? whole;
  });
}

interface Tag {
  name: string;
  closing: boolean;
  attrs: Map<string, string>;
  start: number;
  end: number;
}

/** A small tag scanner: enough for server-rendered forms, not a general HTML parser. */
function* scanTags(html: string): Generator<Tag> {
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    if (lt === -1) return;
    if (html.startsWith('<!--', lt)) {
      const endComment = html.indexOf('-->', lt + 4);
      i = endComment === -1 ? html.length : endComment + 3;
      continue;
    }
    let j = lt + 1;
    const closing = html[j] === '/';
    if (closing) j++;
    const nameStart = j;
    while (j < html.length && /[A-Za-z0-9-]/.test(html[j] ?? '')) j++;
    const name = html.slice(nameStart, j).toLowerCase();
    if (!name) {
      i = lt + 1;
      continue;
    }
    const attrs = new Map<string, string>();
    for (;;) {
      while (j < html.length && /\s|\//.test(html[j] ?? '')) j++;
      if (j >= html.length || html[j] === '>') break;
      const attrStart = j;
      while (j < html.length && !/[\s=>/]/.test(html[j] ?? '')) j++;
      const attrName = html.slice(attrStart, j).toLowerCase();
      while (j < html.length && /\s/.test(html[j] ?? '')) j++;
      let value = '';
      if (html[j] === '=') {
        j++;
        while (j < html.length && /\s/.test(html[j] ?? '')) j++;
        const quote = html[j];
        if (quote === '"' || quote === "'") {
          const close = html.indexOf(quote, j + 1);
          value = html.slice(j + 1, close === -1 ? html.length : close);
          j = close === -1 ? html.length : close + 1;
        } else {
          const valueStart = j;
          while (j < html.length && !/[\s>]/.test(html[j] ?? '')) j++;
          value = html.slice(valueStart, j);
        }
      }
      if (attrName && !attrs.has(attrName)) attrs.set(attrName, decodeEntities(value));
      if (j === attrStart) j++;
    }
    const end = Math.min(j + 1, html.length);
    yield { name, closing, attrs, start: lt, end };
    i = end;
    // Skip raw text so markup inside scripts and styles is not read as tags.
    if (!closing && (name === 'script' || name === 'style')) {
      const close = html.toLowerCase().indexOf(`</${name}`, i);
      i = close === -1 ? html.length : close;
    }
  }
}

/**
 * The forms of a page with their successful controls (HTML §4.10.21.4, simplified): hidden, text,
 * password, email and similar inputs, checked checkboxes and radios, textareas, and the selected
 * (or first) option of a select. Buttons are left out; pass their name and value in `fields`.
 * Controls outside a form that name it with `form="id"` are included.
 */
export function parseForms(html: string, baseUrl: URL): ParsedForm[] {
  const forms: (ParsedForm & { ownerId?: string })[] = [];
  const detached: { formId: string; field: [string, string] }[] = [];
  let open: ParsedForm | undefined;
  let textarea: { name: string; start: number; target: ParsedForm | string | undefined } | undefined;
  let select:
    { name: string; first?: string; chosen?: string; target: ParsedForm | string | undefined } | undefined;

  const owner = (attrs: Map<string, string>): ParsedForm | string | undefined => attrs.get('form') ?? open;
  const add = (target: ParsedForm | string | undefined, field: [string, string]) => {
    if (typeof target === 'string') detached.push({ formId: target, field });
    else target?.fields.push(field);
  };

  for (const tag of scanTags(html)) {
    if (tag.name === 'form' && !tag.closing) {
      const method = (tag.attrs.get('method') ?? 'get').toUpperCase();
      open = {
        action: new URL(tag.attrs.get('action') || baseUrl.href, baseUrl),
        method: method === 'POST' ? 'POST' : 'GET',
        id: tag.attrs.get('id'),
        fields: [],
      };
      forms.push(open);
    } else if (tag.name === 'form' && tag.closing) {
      open = undefined;
    } else if (tag.name === 'input' && !tag.closing) {
      const name = tag.attrs.get('name');
      const type = (tag.attrs.get('type') ?? 'text').toLowerCase();
      if (!name || tag.attrs.has('disabled')) continue;
      if (['submit', 'button', 'image', 'reset', 'file'].includes(type)) continue;
      if ((type === 'checkbox' || type === 'radio') && !tag.attrs.has('checked')) continue;
      const fallback = type === 'checkbox' || type === 'radio' ? 'on' : '';
      add(owner(tag.attrs), [name, tag.attrs.get('value') ?? fallback]);
    } else if (tag.name === 'textarea') {
      if (!tag.closing) {
        const name = tag.attrs.get('name');
        textarea = name ? { name, start: tag.end, target: owner(tag.attrs) } : undefined;
      } else if (textarea) {
        add(textarea.target, [textarea.name, decodeEntities(html.slice(textarea.start, tag.start))]);
        textarea = undefined;
      }
    } else if (tag.name === 'select') {
      if (!tag.closing) {
        const name = tag.attrs.get('name');
        select = name ? { name, target: owner(tag.attrs) } : undefined;
      } else if (select) {
        const value = select.chosen ?? select.first;
        if (value !== undefined) add(select.target, [select.name, value]);
        select = undefined;
      }
    } else if (tag.name === 'option' && !tag.closing && select) {
      const value = tag.attrs.get('value') ?? '';
      select.first ??= value;
      if (tag.attrs.has('selected')) select.chosen ??= value;
    }
  }
  for (const { formId, field } of detached) forms.find((f) => f.id === formId)?.fields.push(field);
  return forms;
}

/** The dev IdP's login form (src/dev/idp.ts) posts to /interaction/<uid>/login. */
const LOGIN_ACTION = /\/interaction\/[^/]+\/login$/;
const CONSENT_ACTION = /\/interaction\/[^/]+\/confirm$/;

/**
 * Completes the dev IdP's login (and consent, when its consent page is shown) and follows redirects
 * until `stopWhen(url)`, e.g. the BFF's callback, which is returned unrequested. `loginPageUrl` may
 * be the authorization URL: redirects to the login page are followed. Throws if the login fails.
 */
export async function loginAtDevIdp(
  browser: TestBrowser,
  loginPageUrl: URL,
  username: string,
  password: string,
  stopWhen: (url: URL) => boolean,
): Promise<NavigateResult> {
  let result = await browser.navigate(loginPageUrl, { stopWhen });
  const hops = [...result.hops];
  let submittedLogin = false;
  for (let step = 0; step < 4; step++) {
    if (result.stopped) return { ...result, hops };
    const html = await result.response.text();
    const forms = parseForms(html, result.url);
    if (forms.some((f) => LOGIN_ACTION.test(f.action.href))) {
      if (submittedLogin) throw new Error(`loginAtDevIdp: login as ${username} failed at ${result.url}`);
      submittedLogin = true;
      result = await browser.submitForm(
        html,
        result.url,
        { username, password },
        { action: LOGIN_ACTION, stopWhen },
      );
    } else if (forms.some((f) => CONSENT_ACTION.test(f.action.href))) {
      result = await browser.submitForm(html, result.url, {}, { action: CONSENT_ACTION, stopWhen });
    } else {
      throw new Error(
        `loginAtDevIdp: ended at ${result.url} (status ${result.response.status}) before stopWhen matched: ${html.slice(0, 500)}`,
      );
    }
    hops.push(...result.hops);
  }
  throw new Error('loginAtDevIdp: too many interaction steps');
}

const END_SESSION_CONFIRM = /\/session\/end\/confirm$/;

/**
 * oidc-provider's end_session always shows a confirmation form with an `xsrf` field, even with
 * id_token_hint. This submits it with `logout=yes` (sign out of the IdP too; pass `logout: false`
 * to end only the client's part) and follows redirects, e.g. to the post_logout_redirect_uri.
 * Give it the end-session URL to navigate there first, or the response showing the form.
 */
export async function confirmEndSession(
  browser: TestBrowser,
  page: URL | TestResponse,
  opts: { logout?: boolean; stopWhen?: (url: URL) => boolean; maxHops?: number } = {},
): Promise<NavigateResult> {
  const response =
    page instanceof URL ? (await browser.navigate(page, { followAutoSubmit: false })).response : page;
  const html = await response.text();
  const form = parseForms(html, response.url).find((f) => END_SESSION_CONFIRM.test(f.action.href));
  if (!form) {
    throw new Error(`confirmEndSession: no end_session form at ${response.url} (status ${response.status})`);
  }
  return browser.submitForm(html, response.url, opts.logout === false ? {} : { logout: 'yes' }, {
    action: END_SESSION_CONFIRM,
    ...(opts.stopWhen ? { stopWhen: opts.stopWhen } : {}),
    ...(opts.maxHops ? { maxHops: opts.maxHops } : {}),
  });
}
