/**
 * A recording upstream API for proxy tests: a real node:http server on 127.0.0.1:0 that records
 * every request and answers according to the current behaviour.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The complete request body (empty until the request has ended; see `ended`). */
  body: Buffer;
  ended: boolean;
}

export type Behaviour =
  /** 200 JSON `{ ok, method, path, receivedAuthorization }` with `Set-Cookie: upstream=1` and `X-Upstream: yes`. */
  | { kind: 'ok' }
  | { kind: 'status'; status: number; body?: string | Buffer; headers?: Record<string, string> }
  /** Never answers; the request is ended when the upstream closes. */
  | { kind: 'hang' }
  /** 200 text/plain, `chunks` chunks `chunk-<i>\n`, one every `delayMs`. */
  | { kind: 'slow-body'; chunks: number; delayMs: number }
  /** 200 application/octet-stream, streaming the request body back as it arrives. */
  | { kind: 'echo-body' }
  /** Destroys the socket without answering. */
  | { kind: 'destroy' };

export interface RecordingUpstream {
  url: string;
  requests: RecordedRequest[];
  behave(behaviour: Behaviour): void;
  close(): Promise<void>;
}

export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const requests: RecordedRequest[] = [];
  let behaviour: Behaviour = { kind: 'ok' };
  const timers = new Set<NodeJS.Timeout>();
  const hanging = new Set<ServerResponse>();

  const server = createServer((req, res) => {
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      body: Buffer.alloc(0),
      ended: false,
    };
    requests.push(record);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      record.body = Buffer.concat(chunks);
      record.ended = true;
    });

    const current = behaviour;
    switch (current.kind) {
      case 'ok': {
        // Answer once the body is in, as a typical API would.
        req.on('end', () => {
          const body = JSON.stringify({
            ok: true,
            method: record.method,
            path: record.url,
            receivedAuthorization: req.headers.authorization !== undefined,
          });
          res.writeHead(200, {
            'Content-Type': 'application/json',
            'Set-Cookie': 'upstream=1',
            'X-Upstream': 'yes',
          });
          res.end(body);
        });
        req.resume();
        break;
      }
      case 'status': {
        req.on('end', () => {
          res.writeHead(current.status, current.headers ?? {});
          res.end(current.body);
        });
        req.resume();
        break;
      }
      case 'hang':
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        req.resume();
        break;
      case 'slow-body': {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Upstream': 'yes' });
        res.flushHeaders();
        let sent = 0;
        const tick = () => {
          if (res.destroyed) return;
          if (sent >= current.chunks) {
            res.end();
            return;
          }
          res.write(`chunk-${sent++}\n`);
          const timer = setTimeout(() => {
            timers.delete(timer);
            tick();
          }, current.delayMs);
          timers.add(timer);
        };
        tick();
        req.resume();
        break;
      }
      case 'echo-body': {
        const contentType = req.headers['content-type'] ?? 'application/octet-stream';
        res.writeHead(200, { 'Content-Type': contentType, 'X-Upstream': 'yes' });
        res.flushHeaders();
        // Written as each chunk arrives, so a test can see the proxy streams rather than buffers.
        req.on('data', (chunk: Buffer) => res.write(chunk));
        req.on('end', () => res.end());
        break;
      }
      case 'destroy':
        req.socket.destroy();
        break;
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    behave(next: Behaviour) {
      behaviour = next;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const res of hanging) res.destroy();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Hung and slow responses would otherwise hold close() open.
      server.closeAllConnections();
      await closed;
    },
  };
}
