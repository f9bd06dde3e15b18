/**
 * bench/RESULTS.md, whose generated sections each driver rewrites between its own markers, leaving
 * everything outside them (the findings written by hand) as it is.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const RESULTS_PATH = fileURLToPath(new URL('../../bench/RESULTS.md', import.meta.url));

/** Replaces the section from `start` to `end` with `text` (which carries both markers), or appends it. */
export function writeResultsSection(text: string, start: string, end: string): void {
  const current = readFileSync(RESULTS_PATH, 'utf8');
  const a = current.indexOf(start);
  const b = current.indexOf(end);
  writeFileSync(
    RESULTS_PATH,
    a !== -1 && b > a
      ? `${current.slice(0, a)}${text}${current.slice(b + end.length)}`
      : `${current.trimEnd()}\n\n${text}\n`,
  );
}
