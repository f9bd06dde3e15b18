/**
 * Pre-rotation schedule (seed 002 §5). Every key of a set is published at our jwks_uri as soon as the
 * BFF loads it; IdPs cache that JWKS, so a new key may sign only once it has been published for the
 * pre-publish window. For each use (sig, enc):
 * - a key becomes eligible `prepublish` seconds after this process first published it;
 * - `active`: the newest eligible key (by `iat`, its creation time); when none is eligible yet
 *   (e.g. right after a start), the oldest key: the one IdPs most likely know;
 * - `next`: newer than the active key (published, waiting);
 * - `retiring`: older than the active key (still published, still verifies and decrypts) until the
 *   operator removes it.
 */
export type KeyState = 'next' | 'active' | 'retiring';

export interface Scheduled {
  readonly kid: string;
  /** Creation time (seconds), from the key's `iat`; 0 when absent (an old key). */
  readonly createdAt: number;
  /** When this process first published it (ms). */
  readonly publishedAt: number;
}

export function schedule(
  keys: readonly Scheduled[],
  nowMs: number,
  prepublishSec: number,
): Map<string, KeyState> {
  const byAge = [...keys].sort((a, b) => a.createdAt - b.createdAt || a.kid.localeCompare(b.kid));
  const eligible = byAge.filter((k) => nowMs - k.publishedAt >= prepublishSec * 1000);
  const active = eligible.at(-1) ?? byAge[0];
  const states = new Map<string, KeyState>();
  if (!active) return states;
  const activeIndex = byAge.indexOf(active);
  byAge.forEach((k, i) =>
    states.set(k.kid, i === activeIndex ? 'active' : i > activeIndex ? 'next' : 'retiring'),
  );
  return states;
}

/** When the next state change happens (ms), so the signer switches on time without polling. */
export function nextChange(
  keys: readonly Scheduled[],
  nowMs: number,
  prepublishSec: number,
): number | undefined {
  const pending = keys
    .map((k) => k.publishedAt + prepublishSec * 1000)
    .filter((t) => t > nowMs)
    .sort((a, b) => a - b);
  return pending[0];
}
