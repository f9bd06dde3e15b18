import { realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { SpaConfig } from '../config/types.js';
import {
  CACHE_NONE,
  cacheControlFor,
  isClientRoute,
  isIndex,
  isReservedPath,
  splitRequestPath,
} from './paths.js';

/** What to answer an SPA request with; the framework edge (plugin.ts) carries it out. */
export type SpaAnswer =
  /** The BFF's own 404 (also for every refused path: nothing tells a refusal from a missing file). */
  | { readonly kind: 'not-found' }
  /** A file of the directory: `file` relative to `dir`, symlinks resolved, inside `dir`. */
  | { readonly kind: 'file'; readonly dir: string; readonly file: string; readonly cacheControl: string }
  /** A fetch from the frontend origin; `index`: the entry point (never stored). */
  | { readonly kind: 'origin'; readonly url: URL; readonly base: URL; readonly index: boolean };

export interface SpaRequest {
  readonly method: string;
  /** The request target as received: path and query, still percent-encoded. */
  readonly url: string;
  readonly accept: string | undefined;
}

/**
 * Decides how an SPA request (GET or HEAD on a path no BFF route took) is answered: a file when
 * one exists, index.html for a navigation to a client-side route, else 404. With a frontend origin,
 * the same decisions without the file system: the origin says what exists.
 */
export async function answerSpaRequest(
  spa: SpaConfig,
  request: SpaRequest,
  reserved: readonly string[],
): Promise<SpaAnswer> {
  const notFound = { kind: 'not-found' } as const;
  if (request.method !== 'GET' && request.method !== 'HEAD') return notFound;
  // A frontend origin keeps its own dotfile policy (Vite serves /node_modules/.vite/…); a directory's
  // dotfiles (.env, .git) are never served.
  const path = splitRequestPath(request.url, { dotfiles: spa.kind === 'origin' });
  if (!path || isReservedPath(path.decoded, reserved)) return notFound;
  const clientRoute = isClientRoute(path.decoded, request.accept);

  if (spa.kind === 'origin') {
    const index = isIndex(path.decoded) || clientRoute;
    const rel = index ? 'index.html' : path.raw.join('/') + (path.query ? `?${path.query}` : '');
    // `./` first: a first segment such as `javascript:x` is a path here, never a scheme. The segments
    // hold no dot segment or separator (splitRequestPath), so the URL stays below the base.
    const url = new URL(`./${rel}`, spa.url);
    return { kind: 'origin', url, base: spa.url, index };
  }

  const asked = isIndex(path.decoded) ? ['index.html'] : path.decoded;
  const file = await fileInside(spa.dir, asked);
  if (file) return { kind: 'file', dir: spa.dir, file, cacheControl: cacheControlFor(file.split('/')) };
  // A missing asset (it has an extension) is a 404, never the page: a script tag must not get HTML.
  if (clientRoute) {
    const index = await fileInside(spa.dir, ['index.html']);
    if (index) return { kind: 'file', dir: spa.dir, file: index, cacheControl: CACHE_NONE };
  }
  return notFound;
}

/**
 * The regular file `segments` names inside `dir` (a real path), relative to `dir` after resolving
 * symlinks: undefined when it is missing, not a file, or resolves outside `dir` or onto a dotfile.
 */
async function fileInside(dir: string, segments: readonly string[]): Promise<string | undefined> {
  if (segments.length === 0 || segments.at(-1) === '') return undefined;
  let real: string;
  try {
    real = await realpath(join(dir, ...segments));
    if (!(await stat(real)).isFile()) return undefined;
  } catch {
    return undefined;
  }
  // Outside the directory the relative path starts with `..`; a dotfile's segment with `.`: both refused.
  const rel = relative(dir, real).split(sep);
  if (rel.some((s) => s.startsWith('.'))) return undefined;
  return rel.join('/');
}
