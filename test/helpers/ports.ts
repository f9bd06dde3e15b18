import { randomInt } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Ports handed out here come from below the kernel's ephemeral range (Linux: 32768–60999 by
 * default), where nothing that listens on port 0 — every other server the tests start, in this
 * process or in the parallel test process — can be given them. A port picked by listening on 0 and
 * closing again was seen taken a moment later by exactly such a server (EADDRINUSE in CI).
 */
const LOW = 20_000;
const HIGH = 32_000;

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, for servers that must know their port before
 * they start (a BFF whose public URL contains it, a redis-server); everything else listens on 0.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = randomInt(LOW, HIGH);
    if (claim(port) && (await isFree(port))) return port;
  }
  throw new Error(`no free port between ${LOW} and ${HIGH} after 50 attempts`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** How long a port handed out stays reserved for the process that got it. */
const CLAIM_MS = 10 * 60_000;

/**
 * Reserve a port across the parallel test processes: both may draw the same random port while
 * neither listens on it yet (EADDRINUSE seen in CI). The first to create its claim file keeps it;
 * claims older than CLAIM_MS are stale (an earlier run) and may be taken over.
 */
function claim(port: number): boolean {
  const dir = join(tmpdir(), 'fapi-bff-test-ports');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, String(port));
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    try {
      if (Date.now() - statSync(file).mtimeMs < CLAIM_MS) return false;
      writeFileSync(file, String(process.pid));
      return true;
    } catch {
      return false;
    }
  }
}
