/**
 * The benchmark's upstream API, forked by `run.ts` as its own process so its CPU time is never
 * charged to the proxy under test (a real upstream runs elsewhere). It answers every request with
 * the same small JSON body over keep-alive, and counts requests, how many carried a Bearer token and
 * how many carried a DPoP-bound token with a proof (`Authorization: DPoP …` plus a `DPoP` header),
 * so the driver can prove every BFF request really went through the token-attach path. Proofs are
 * not verified here: that would charge the upstream, not the BFF (the e2e tests verify them).
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
let dpop = 0;

const server = createServer((req, res) => {
  requests++;
  const authorization = req.headers.authorization;
  if (authorization?.startsWith('Bearer ')) bearer++;
  else if (authorization?.startsWith('DPoP ') && typeof req.headers.dpop === 'string' && req.headers.dpop)
    dpop++;
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
  send({ type: 'stats-result', id: message.id, requests, bearer, dpop });
  if (message.peek) return;
  requests = 0;
  bearer = 0;
  dpop = 0;
});
// The driver went away (finished or crashed): never outlive it.
process.on('disconnect', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});

server.listen(0, '127.0.0.1', () => {
  send({ type: 'ready', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});
