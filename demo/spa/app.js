// fapi-bff demo SPA. Plain JavaScript, no build step, loaded as an external script so it runs under
// `Content-Security-Policy: default-src 'self'`. It only ever talks to the BFF on its own origin: the
// session cookie is HttpOnly and tokens never reach the browser.
//
// Readiness for headless tests: <body data-state> is "loading", then "signed-in" or "signed-out"
// (or "error"); <body data-api> becomes "ok" or "error" after each API call.
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
