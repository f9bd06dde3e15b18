import { createHash } from 'node:crypto';

/** Minimal server-rendered pages (errors, the fragment relay). Everything interpolated is escaped. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The one stylesheet of server pages, inline so the page needs no second request, and allowed by its
 * hash in the CSP (CSP Level 3 §8.4 hash-source) rather than by 'unsafe-inline'.
 */
const PAGE_STYLE = `
:root{color-scheme:light dark;font-family:system-ui,sans-serif}
body{margin:0;min-height:100vh;display:grid;place-items:center;background:Canvas}
main{max-width:34rem;margin:2rem 1rem;padding:1.5rem 1.75rem;border:1px solid #8884;border-radius:.75rem;box-shadow:0 .5rem 1.5rem #0002}
h1{margin:.25rem 0 .75rem;font-size:1.4rem}
.kind{margin:0;font-size:.8rem;letter-spacing:.08em;text-transform:uppercase;color:#b3261e}
.kind.calm{color:#1d6fb8}
.hint{padding:.6rem .8rem;border-left:.25rem solid #1d6fb8;background:#1d6fb81a}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin:1.25rem 0 .5rem}
.actions a{padding:.45rem 1rem;border-radius:.4rem;border:1px solid #1d6fb8;text-decoration:none}
.actions a.primary{background:#1d6fb8;color:#fff}
.meta{font-size:.8rem;opacity:.75}
code{font-size:.9em}
`;

const PAGE_STYLE_HASH = `'sha256-${createHash('sha256').update(PAGE_STYLE).digest('base64')}'`;

/** No scripts, no framing, only the page's own inline style: for pages that are only text. */
export const STRICT_PAGE_CSP = `default-src 'none'; style-src ${PAGE_STYLE_HASH}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`;

export interface ErrorPageInput {
  status: number;
  code: string;
  title: string;
  detail?: string;
  requestId: string;
  /** The application's public URL: where "back" and "sign in again" lead. */
  homeUrl?: string;
  /** A sentence that tells the user what to do next. */
  hint?: string;
  /** The user chose this outcome (e.g. cancelled the sign-in): shown calmly, not as a failure. */
  calm?: boolean;
  /** Offer "Sign in again" at this URL (login failures, where a new attempt is the remedy). */
  loginUrl?: string;
}

export function errorPage(p: ErrorPageInput): string {
  const home = p.homeUrl ?? '/';
  const retry = p.loginUrl ? `<a class="primary" href="${escapeHtml(p.loginUrl)}">Sign in again</a>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(p.title)}</title><style>${PAGE_STYLE}</style></head>
<body data-code="${escapeHtml(p.code)}">
<main>
<p class="kind${p.calm ? ' calm' : ''}">${p.calm ? 'Nothing went wrong' : 'Something went wrong'}</p>
<h1>${escapeHtml(p.title)}</h1>
<p>${escapeHtml(p.detail ?? 'The request could not be completed.')}</p>
${p.hint ? `<p class="hint">${escapeHtml(p.hint)}</p>` : ''}
<p class="actions">${retry}<a href="${escapeHtml(home)}"${retry ? '' : ' class="primary"'}>Back to the application</a></p>
<p class="meta">Error code <code>${escapeHtml(p.code)}</code> (HTTP ${p.status}). Reference <code>${escapeHtml(p.requestId)}</code>.</p>
</main>
</body></html>
`;
}
