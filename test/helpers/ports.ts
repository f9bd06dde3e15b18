import { randomInt } from 'node:crypto';
import { createServer } from 'node:net';

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
    if (await isFree(port)) return port;
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
