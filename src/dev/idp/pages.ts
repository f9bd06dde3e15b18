import type { ServerResponse } from 'node:http';

/** The dev IdP's own HTML: login, consent, error and logout pages, with a strict CSP. */

export const TITLE = 'fapi-bff development IdP';
export const STYLESHEET_PATH = '/dev-idp.css';
/**
 * Our pages load nothing but the stylesheet and run no script. No `form-action`: browsers apply it
 * to the redirect chain after a form post too, which would block the way back to the client.
 */
export const PAGE_CSP = "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'";

export function escapeHtml(value: unknown): string {
  return String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

export function page(heading: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(heading)} - ${TITLE}</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
<p class="banner" role="alert"><strong>Development only.</strong> This is the ${TITLE}: fixed test users, in-memory state, no real security. Never use it in production.</p>
<main>
<h1>${escapeHtml(heading)}</h1>
${body}
</main>
</body>
</html>
`;
}

export const STYLESHEET = `body{font-family:system-ui,sans-serif;margin:0;color:#222}
.banner{margin:0;padding:.75rem 1rem;background:#b00020;color:#fff}
main{max-width:28rem;margin:2rem auto;padding:0 1rem}
label{display:block;margin:.75rem 0 .25rem}
input[type=text],input[type=password]{width:100%;padding:.4rem;box-sizing:border-box}
button{margin:1rem .5rem 0 0;padding:.4rem 1rem}
.error{color:#b00020;font-weight:bold}
code{background:#eee;padding:0 .2rem}
`;

export function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Security-Policy': PAGE_CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  });
  res.end(html);
}

export function loginPage(uid: string, clientId: string, error?: string, username = ''): string {
  return page(
    'Sign in',
    `<p>Signing in to <code>${escapeHtml(clientId)}</code>.</p>
${error ? `<p class="error" id="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="username">Username</label>
<input id="username" name="username" type="text" value="${escapeHtml(username)}" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="sign-in">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
<button type="submit" id="cancel">Cancel</button>
</form>`,
  );
}

export function consentPage(uid: string, clientId: string, scope: string): string {
  const items = scope
    .split(' ')
    .filter(Boolean)
    .map((s) => `<li><code>${escapeHtml(s)}</code></li>`)
    .join('');
  return page(
    'Allow access?',
    `<p><code>${escapeHtml(clientId)}</code> asks for:</p>
<ul>${items}</ul>
<form method="post" action="/interaction/${escapeHtml(uid)}/confirm">
<button type="submit" id="allow">Allow</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
<button type="submit" id="deny">Deny</button>
</form>`,
  );
}
