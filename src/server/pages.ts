/** Minimal server-rendered pages (errors, the fragment relay later). Everything interpolated is escaped. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function errorPage(p: {
  status: number;
  code: string;
  title: string;
  detail?: string;
  requestId: string;
}): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(p.title)}</title></head>
<body>
<main>
<h1>${escapeHtml(p.title)}</h1>
<p>${escapeHtml(p.detail ?? 'The request could not be completed.')}</p>
<p>Error code <code>${escapeHtml(p.code)}</code> (HTTP ${p.status}). Reference <code>${escapeHtml(p.requestId)}</code>.</p>
<p><a href="/">Back to the application</a></p>
</main>
</body></html>
`;
}

/** No scripts, no styles, no framing: for pages that are only text. */
export const STRICT_PAGE_CSP =
  "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
