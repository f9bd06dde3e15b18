/**
 * Raw HTTP/1.1 on loopback for tests where a client library would normalise what matters: an
 * upstream that records each request line exactly as received, and a client that sends a request
 * target byte for byte (absolute-form, `..;`, double-encoded dots).
 */
import { createServer as createHttpServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';

export interface RawUpstream {
  url: string;
  /** Request lines (`GET /path HTTP/1.1`) as received, oldest first. */
  lines: string[];
  close(): Promise<void>;
}

/**
 * An upstream on 127.0.0.1:0 recording the raw request line. node:http hands over the request
 * target unparsed (`req.url` is the target as sent), so the line is rebuilt exactly.
 */
export async function startRawUpstream(): Promise<RawUpstream> {
  const lines: string[] = [];
  const server = createHttpServer((req, res) => {
    lines.push(`${req.method} ${req.url} HTTP/${req.httpVersion}`);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    lines,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/**
 * Send one request with `target` exactly as given and return the status code (0 when the
 * connection closed without a response). Bounded by `timeoutMs`.
 */
export async function rawRequest(
  origin: string,
  target: string,
  headers: Record<string, string> = {},
  timeoutMs = 15_000,
): Promise<{ status: number; head: string }> {
  const { hostname, port, host } = new URL(origin);
  const head = [`GET ${target} HTTP/1.1`, `Host: ${host}`, 'Connection: close'];
  for (const [name, value] of Object.entries(headers)) head.push(`${name}: ${value}`);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no response to ${target} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`${head.join('\r\n')}\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
      resolve({ status: status ? Number(status) : 0, head: text.split('\r\n\r\n')[0] ?? '' });
    });
  });
}
