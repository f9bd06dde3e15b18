import { createServer } from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it (listen on 0), we close
 * the listener and hand the number out. For servers that must know their port before they start
 * (a BFF whose public URL contains it, a redis-server); everything else listens on 0 directly.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() =>
        address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no TCP address')),
      );
    });
  });
}
