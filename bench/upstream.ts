/**
 * The benchmark's upstream API, forked by `run.ts` as its own process so its CPU time is never
 * charged to the proxy under test (a real upstream runs elsewhere). It answers every request with
 * the same small JSON body over keep-alive, and counts requests and how many carried a Bearer token
 * so the driver can prove every BFF request really went through the token-attach path.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StatsRequest, StatsResult, ChildReady } from './protocol.js';

const BODY = Buffer.from(
  JSON.stringify({
    items: [
      { id: 1, name: 'alpha', qty: 3 },
      { id: 2, name: 'beta', qty: 7 },
    ],
  }),
);
const HEADERS = { 'content-type': 'application/json', 'content-length': String(BODY.length) };

let requests = 0;
let bearer = 0;

const server = createServer((req, res) => {
  requests++;
  if (req.headers.authorization?.startsWith('Bearer ')) bearer++;
  req.resume();
  res.writeHead(200, HEADERS);
  res.end(BODY);
});
// The proxies keep their pools for 10 s and the driver pauses between points: never be the side
// that closes an idle connection mid-run.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;

function send(message: ChildReady | StatsResult): void {
  process.send?.(message);
}

process.on('message', (message: StatsRequest) => {
  if (message.type !== 'stats') return;
  send({ type: 'stats-result', id: message.id, requests, bearer });
  requests = 0;
  bearer = 0;
});
// The driver went away (finished or crashed): never outlive it.
process.on('disconnect', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});

server.listen(0, '127.0.0.1', () => {
  send({ type: 'ready', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});
