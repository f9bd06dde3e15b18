// fapi-bff demo SPA. Plain JavaScript, no build step, loaded as an external script so it runs under
// `Content-Security-Policy: default-src 'self'`. It only ever talks to the BFF on its own origin: the
// session cookie is HttpOnly and tokens never reach the browser.
//
// Readiness for headless tests: <body data-state> is "loading", then "signed-in" or "signed-out"
// (or "error"); <body data-api> becomes "ok" or "error" after each API call; <body data-inspector>
// becomes "ready" when the session inspector has rendered (and "refreshed" after "Refresh now").
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const loginButton = $('login');
  const logoutButton = $('logout');
  const callApiButton = $('call-api');
  const sessionOutput = $('session');
  const apiOutput = $('api-result');
  const statusLine = $('status');

  /** The BFF's CSRF defence: a custom header forces a CORS preflight cross-origin (CONTRACT.md). */
  const CSRF_HEADERS = { 'X-CSRF': '1' };

  let logoutUrl = null;

  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle('error', Boolean(isError));
  }

  function show(element, value, isError) {
    element.textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
    element.classList.toggle('error', Boolean(isError));
  }

  /** Reads a JSON or problem+json body; anything else is shown as text. */
  async function readBody(response) {
    const type = response.headers.get('content-type') || '';
    const text = await response.text();
    if (/[/+]json\b/.test(type)) {
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    }
    return text;
  }

  /** problem+json (RFC 9457) as the BFF sends it: { code, title, status, detail }. */
  function describeProblem(body, response) {
    if (body && typeof body === 'object') {
      const parts = [body.code, body.title, body.detail].filter(Boolean);
      if (parts.length) return `${body.status || response.status}: ${parts.join(' - ')}`;
    }
    return `${response.status} ${response.statusText}`;
  }

  async function loadSession() {
    document.body.dataset.state = 'loading';
    try {
      const response = await fetch('/auth/session', {
        headers: { ...CSRF_HEADERS, Accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
      const body = await readBody(response);
      if (response.status === 401) {
        logoutUrl = null;
        loginButton.hidden = false;
        logoutButton.hidden = true;
        show(sessionOutput, '(signed out)');
        inspectorSection.hidden = true;
        setStatus('Signed out.');
        document.body.dataset.state = 'signed-out';
        return;
      }
      if (!response.ok || !body || typeof body !== 'object') {
        throw new Error(describeProblem(body, response));
      }
      logoutUrl = typeof body.logoutUrl === 'string' ? body.logoutUrl : null;
      loginButton.hidden = true;
      logoutButton.hidden = logoutUrl === null;
      show(sessionOutput, { claims: body.claims, expiresAt: body.expiresAt });
      const who =
        (body.claims && (body.claims.name || body.claims.email || body.claims.sub)) || 'unknown user';
      setStatus(`Signed in as ${who}; the session expires at ${body.expiresAt}.`);
      document.body.dataset.state = 'signed-in';
      void loadInspector();
    } catch (error) {
      loginButton.hidden = false;
      logoutButton.hidden = true;
      show(sessionOutput, '(unknown)', true);
      setStatus(`Could not load the session: ${error instanceof Error ? error.message : error}`, true);
      document.body.dataset.state = 'error';
    }
  }

  async function callApi() {
    callApiButton.disabled = true;
    delete document.body.dataset.api;
    show(apiOutput, 'Calling…');
    try {
      const response = await fetch('/api/demo/whoami', {
        headers: { ...CSRF_HEADERS, Accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
      const body = await readBody(response);
      if (response.ok) {
        show(apiOutput, body);
        renderUpstream(body);
        setStatus(`API call succeeded (${response.status}).`);
        document.body.dataset.api = 'ok';
      } else {
        show(apiOutput, body, true);
        setStatus(`API call failed: ${describeProblem(body, response)}`, true);
        document.body.dataset.api = 'error';
      }
    } catch (error) {
      show(apiOutput, String(error), true);
      setStatus('The BFF could not be reached.', true);
      document.body.dataset.api = 'error';
    } finally {
      callApiButton.disabled = false;
    }
  }

  // ---- Session inspector (development setup only: GET /auth/inspect exists only there) ----

  const inspectorSection = $('inspector');
  let inspected = null;
  let countdownTimer = null;

  /** Renders label/value pairs into a <dl>; values are text only (never HTML). */
  function facts(dl, rows) {
    dl.replaceChildren();
    for (const [label, value, ok] of rows) {
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.textContent = value;
      if (ok) dd.classList.add('ok');
      dl.append(dt, dd);
    }
  }

  /** What page JavaScript can read: the session cookie is HttpOnly, and nothing is put in storage. */
  function renderPageView() {
    const cookie = document.cookie;
    facts($('page-facts'), [
      [
        'document.cookie',
        cookie === '' ? '"" (empty: the session cookie is HttpOnly)' : cookie,
        cookie === '',
      ],
      ['localStorage', `${localStorage.length} item(s)`, localStorage.length === 0],
      ['sessionStorage', `${sessionStorage.length} item(s)`, sessionStorage.length === 0],
      ['tokens in this page', 'none: the BFF keeps them server-side', true],
    ]);
  }

  function renderCookie(cookie) {
    $('cookie-header').textContent = `Set-Cookie: ${cookie.setCookie}`;
    const why = {
      HttpOnly: 'HttpOnly: no JavaScript access',
      Secure: 'Secure: HTTPS only (localhost counts)',
      'Path=/': 'Path=/',
      'SameSite=Lax': 'SameSite=Lax: not sent on cross-site subrequests',
      'SameSite=Strict': 'SameSite=Strict: never sent cross-site',
    };
    const chips = cookie.setCookie
      .split('; ')
      .slice(1)
      .map((a) => why[a] || a);
    if (cookie.name.startsWith('__Host-')) chips.unshift('__Host- prefix: this host only, no Domain');
    $('cookie-attributes').replaceChildren(
      ...chips.map((text) => {
        const li = document.createElement('li');
        li.textContent = text;
        return li;
      }),
    );
  }

  function step(what, detail, why) {
    const li = document.createElement('li');
    const strong = document.createElement('span');
    strong.className = 'what';
    strong.textContent = what;
    li.append(strong, document.createTextNode(`: ${detail}`));
    if (why) {
      const small = document.createElement('span');
      small.className = 'why';
      small.textContent = why;
      li.append(small);
    }
    return li;
  }

  function renderLogin(login) {
    const list = $('login-steps');
    if (!login) {
      list.replaceChildren(step('No record', 'this session was created before the inspector existed'));
      return;
    }
    const r = login.response;
    list.replaceChildren(
      step(
        'Pushed Authorization Request',
        login.par ? 'yes' : 'no',
        'RFC 9126: the browser carried only client_id and request_uri',
      ),
      step('PKCE', login.pkce, 'RFC 7636: the code is useless without the verifier the server kept'),
      step(
        'Signed request object (JAR)',
        login.jar
          ? `${login.jar.alg}${login.jar.encryption ? `, encrypted ${login.jar.encryption}` : ', not encrypted'}`
          : 'off',
        'RFC 9101: the IdP knows the request came from this client, unaltered',
      ),
      step(
        'Authorization response',
        r.mode === 'query'
          ? 'plain query parameters'
          : `JARM response_mode=${r.mode}, ${r.encryption ? `encrypted ${r.encryption}` : `signed ${r.signedAlg}, not encrypted`}`,
        'JARM: the response is a JWT signed by the IdP, checked before use',
      ),
      step(
        'Issuer check',
        login.issChecked ? 'iss verified' : 'no',
        'RFC 9207: defends against mix-up attacks',
      ),
      step(
        'Token endpoint authentication',
        `${login.tokenEndpointAuth.method}${login.tokenEndpointAuth.alg ? ` (${login.tokenEndpointAuth.alg})` : ''}`,
        'a signed client assertion instead of a shared secret',
      ),
      step('ID token', `signature verified, alg ${login.idTokenAlg}`),
      step(
        'Sender-constrained token',
        login.dpopJkt ? `DPoP, key thumbprint ${login.dpopJkt}` : `${login.tokenType} (not bound)`,
        'RFC 9449: a stolen access token is useless without the key, which never leaves the server',
      ),
      step('Scopes granted', login.scope || '(none reported)'),
      step(
        'Refreshes since login',
        `${login.refreshes} (${login.rotations} rotated the refresh token)${login.lastRefreshAt ? `, last at ${new Date(login.lastRefreshAt).toLocaleTimeString()}` : ''}`,
        'each refresh is single-flight across instances; a rotated refresh token replaces the old one',
      ),
    );
  }

  function remaining(iso) {
    const ms = Date.parse(iso) - Date.now();
    if (ms <= 0) return { text: 'expired', soon: true };
    const total = Math.floor(ms / 1000);
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const sec = total % 60;
    const text =
      h > 0 ? `${h} h ${String(m).padStart(2, '0')} min` : `${m} min ${String(sec).padStart(2, '0')} s`;
    return { text: `in ${text}`, soon: ms < 60_000 };
  }

  function renderCountdowns() {
    if (!inspected) return;
    const dl = $('countdowns');
    dl.replaceChildren();
    const rows = [
      ['Access token', inspected.tokens.accessTokenExpiresAt, 'refreshed by the BFF shortly before'],
      ['Session (idle)', inspected.session.idleExpiresAt, 'extended by activity'],
      ['Session (absolute)', inspected.session.absoluteExpiresAt, 'sign in again after'],
    ];
    for (const [label, iso, note] of rows) {
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      const left = remaining(iso);
      const span = document.createElement('span');
      span.className = `countdown${left.soon ? ' soon' : ''}`;
      span.textContent = left.text;
      dd.append(span, document.createTextNode(` (${note})`));
      dl.append(dt, dd);
    }
  }

  function renderInspector(view) {
    inspected = view;
    renderPageView();
    renderCookie(view.cookie);
    renderLogin(view.login);
    renderCountdowns();
    $('logout-everywhere').hidden = !view.logoutEverywhere;
    inspectorSection.hidden = false;
    if (!countdownTimer) countdownTimer = setInterval(renderCountdowns, 1000);
  }

  async function loadInspector() {
    const response = await fetch('/auth/inspect', {
      headers: { ...CSRF_HEADERS, Accept: 'application/json' },
      credentials: 'same-origin',
      cache: 'no-store',
    });
    if (!response.ok) return; // not the development setup: no inspector
    renderInspector(await response.json());
    document.body.dataset.inspector = 'ready';
  }

  async function refreshNow() {
    const button = $('refresh-now');
    button.disabled = true;
    try {
      const response = await fetch('/auth/inspect/refresh', {
        method: 'POST',
        headers: { ...CSRF_HEADERS, Accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
      const body = await readBody(response);
      if (!response.ok) {
        setStatus(`Refresh failed: ${describeProblem(body, response)}`, true);
        return;
      }
      renderInspector(body);
      setStatus(
        `Refreshed: a new access token, valid until ${new Date(body.tokens.accessTokenExpiresAt).toLocaleTimeString()}.`,
      );
      document.body.dataset.inspector = 'refreshed';
    } finally {
      button.disabled = false;
    }
  }

  /** The upstream's view of the call: token type, binding, scopes, cnf.jkt; never the token. */
  function renderUpstream(body) {
    if (!body || typeof body !== 'object' || !body.tokenType) return;
    facts($('upstream-facts'), [
      ['token type', body.tokenType],
      ['binding', body.binding],
      ['cnf.jkt', body.cnf && body.cnf.jkt ? body.cnf.jkt : '(none)'],
      ['scopes', body.scope || '(none)'],
      ['audience', Array.isArray(body.aud) ? body.aud.join(' ') : String(body.aud)],
      ['subject', body.sub],
      ['client', body.client_id],
      ['expires', body.exp ? new Date(body.exp * 1000).toLocaleTimeString() : '?'],
    ]);
    $('upstream').hidden = false;
  }

  $('refresh-now').addEventListener('click', () => {
    void refreshNow();
  });
  $('logout-everywhere').addEventListener('click', () => {
    if (inspected && inspected.logoutEverywhere) window.location.assign(inspected.logoutEverywhere);
  });

  loginButton.addEventListener('click', () => {
    window.location.assign('/auth/login?returnTo=/');
  });
  logoutButton.addEventListener('click', () => {
    if (logoutUrl) window.location.assign(logoutUrl);
  });
  callApiButton.addEventListener('click', () => {
    void callApi();
  });

  void loadSession();
})();
