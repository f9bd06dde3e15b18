/**
 * Which SPA request is which: the path as segments (refusing every form of traversal), client-side
 * routes, hashed asset names and their caching. No I/O and no framework here.
 */
import { classifyPathSegment } from '../path-segments.js';

/** A request path split into its segments: `raw` as received, `decoded` percent-decoded. */
export interface RequestPath {
  readonly raw: readonly string[];
  readonly decoded: readonly string[];
  /** The raw query without `?` ('' when none). */
  readonly query: string;
}

/**
 * Splits and checks a request target (`/a/b?x`). Undefined for anything that could leave the
 * directory or the frontend origin's base path, or name something else than it spells: `.` and `..`
 * segments (also percent-encoded, RFC 3986 §5.2.4), an encoded `/` or `\`, NUL, `#`, empty segments
 * (`//`) except a trailing slash, malformed percent-encoding. `dotfiles: false` also refuses every
 * segment starting with a dot (`.env`, `.git/…`): a build directory has no business serving them.
 */
export function splitRequestPath(target: string, options: { dotfiles: boolean }): RequestPath | undefined {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q + 1);
  if (!path.startsWith('/')) return undefined;
  const raw = path.slice(1).split('/');
  const decoded: string[] = [];
  for (const [i, segment] of raw.entries()) {
    let text: string;
    try {
      text = decodeURIComponent(segment);
    } catch {
      return undefined;
    }
    if (text === '' && i !== raw.length - 1) return undefined;
    if (/[\0#]/.test(text) || classifyPathSegment(segment) !== 'safe') return undefined;
    if (!options.dotfiles && text.startsWith('.')) return undefined;
    decoded.push(text);
  }
  return { raw, decoded, query };
}

/** The paths the BFF itself owns: never an SPA file, never the index.html fallback. */
export function isReservedPath(decoded: readonly string[], reserved: readonly string[]): boolean {
  const path = `/${decoded.join('/')}`;
  return reserved.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
}

/** The extension of the last segment (`js` of `app.3f2a9c1d.js`), '' when it has none. */
export function extensionOf(decoded: readonly string[]): string {
  const last = decoded.at(-1) ?? '';
  const dot = last.lastIndexOf('.');
  return dot > 0 ? last.slice(dot + 1) : '';
}

/**
 * A navigation to a client-side route: a page (the browser accepts text/html), not a file (no
 * extension). The SPA's router then reads the path from `location`.
 */
export function isClientRoute(decoded: readonly string[], accept: string | undefined): boolean {
  return extensionOf(decoded) === '' && acceptsHtml(accept);
}

/** Whether an Accept header (RFC 9110 §12.5.1) lists text/html with a non-zero weight. */
export function acceptsHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((range) => {
    const [type, ...params] = range.split(';').map((s) => s.trim().toLowerCase());
    if (type !== 'text/html') return false;
    const q = params.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/** The file a request names is the entry point: `/` and `/index.html`. */
export function isIndex(decoded: readonly string[]): boolean {
  return decoded.length === 1 && (decoded[0] === '' || decoded[0] === 'index.html');
}

/**
 * A content-hashed file name: a dot- or dash-separated part of 8 or more hex digits with at least
 * one digit and one letter (`app.3f2a9c1d.js`, `main-9b1e0c7fa2d4.css`), as webpack, Angular and
 * Rollup/Vite with `hashCharacters: 'hex'` write them. Its content never changes under that name.
 */
export function isHashedName(name: string): boolean {
  const parts = name.split(/[.-]/);
  parts.pop();
  return parts.some((part) => /^[0-9a-f]{8,}$/i.test(part) && /[0-9]/.test(part) && /[a-f]/i.test(part));
}

/** RFC 9111 §5.2.2.4 no-cache: stored, revalidated (ETag / Last-Modified) before each use. */
export const CACHE_REVALIDATE = 'no-cache';
/** RFC 8246: a year, and no revalidation on reload; the name changes when the content does. */
export const CACHE_IMMUTABLE = 'public, max-age=31536000, immutable';
/** RFC 9111 §5.2.2.5: index.html names the current assets; a stale copy would load old ones. */
export const CACHE_NONE = 'no-store';

/** The Cache-Control of a file of the SPA. */
export function cacheControlFor(decoded: readonly string[]): string {
  if (isIndex(decoded) || decoded.at(-1) === 'index.html') return CACHE_NONE;
  return isHashedName(decoded.at(-1) ?? '') ? CACHE_IMMUTABLE : CACHE_REVALIDATE;
}
