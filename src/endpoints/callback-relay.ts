import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { escapeHtml } from '../server/pages.js';

/**
 * The same-site relay for authorization responses that arrive cross-site.
 *
 * The login binding cookie is `SameSite=Lax` (or `Strict` with MS_BFF_COOKIE_SAMESITE=strict). A
 * browser does not send it on the IdP's cross-site `POST` (response_mode `form_post` / `form_post.jwt`,
 * https://openid.net/specs/oauth-v2-form-post-response-mode-1_0.html), and with `Strict` not even on
 * the IdP's cross-site redirect (RFC 6265bis §5.2,
 * https://datatracker.ietf.org/doc/html/draft-ietf-httpbis-rfc6265bis#section-5.2). Such an arrival
 * gets a page that re-submits the same parameters to the callback as a same-origin `POST`, which
 * carries the cookie. The binding check itself is unchanged: the transaction for `state` must belong
 * to the binding cookie this browser sends, so a relayed callback of another browser still fails.
 */

/**
 * True for a browser's cross-site arrival without the binding cookie: the one case a relay can help.
 * Fetch Metadata (https://www.w3.org/TR/fetch-metadata/#sec-fetch-site-header) says where the
 * navigation came from; a browser without it is recognised on POST by a foreign `Origin`
 * (RFC 6454 §7, https://www.rfc-editor.org/rfc/rfc6454#section-7). A same-origin request (the relay's
 * own submission) is never relayed again, so there is no loop; nor is a non-browser client.
 */
export function needsRelay(request: FastifyRequest, publicOrigin: string, hasBinding: boolean): boolean {
  if (hasBinding) return false;
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'cross-site';
  const origin = request.headers.origin;
  return request.method === 'POST' && typeof origin === 'string' && origin !== publicOrigin;
}

/**
 * The relay page. Its only script is allowed by a per-response CSP nonce; it holds no data itself.
 * For a redirect (GET), the script copies the parameters from the URL's query and fragment
 * (fragment.jwt, JARM §2.3.2,
 * https://openid.net/specs/oauth-v2-jarm-final.html#section-2.3.2) into the form and removes them from
 * the address bar and history. For a form post, the received fields are written into the form as
 * escaped hidden inputs, as the IdP's own form_post page did; the script only submits it.
 * `no-store` and `no-referrer` keep the parameters out of caches and Referer headers.
 */
export function sendRelayPage(
  reply: FastifyReply,
  fields: URLSearchParams | undefined,
  action = '/auth/callback',
): FastifyReply {
  const nonce = randomBytes(16).toString('base64');
  const inputs = fields
    ? [...fields]
        .map(
          ([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`,
        )
        .join('\n')
    : '';
  const copyFromUrl = fields
    ? ''
    : `  var params = new URLSearchParams(location.search);
  new URLSearchParams(location.hash.slice(1)).forEach(function (value, name) { params.append(name, value); });
  history.replaceState(null, '', location.pathname);
  params.forEach(function (value, name) {
    var input = document.createElement('input');
    input.type = 'hidden'; input.name = name; input.value = value;
    form.appendChild(input);
  });
`;
  return reply
    .code(200)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .header(
      'content-security-policy',
      `default-src 'none'; script-src 'nonce-${nonce}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
    ).send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in…</title></head>
<body><noscript>JavaScript is needed to finish signing in.</noscript>
<form id="relay" method="post" action="${escapeHtml(action)}">
${inputs}
</form>
<script nonce="${nonce}">
(function () {
  var form = document.getElementById('relay');
${copyFromUrl}  form.submit();
})();
</script></body></html>
`);
}
