/**
 * WebSocket routes (`websocket: true`) through a real BFF to a real WebSocket upstream (ws), with a
 * real WebSocket client: echo, the user's token on the upstream handshake (verified as the IdP's
 * JWT), no browser cookie upstream, the Origin check that stops cross-site WebSocket hijacking, and
 * the connection closed (4401) by a logout.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { WebSocket, WebSocketServer } from 'ws';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { WS_CLOSE } from '../../src/proxy/websocket.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';

const RESOURCE = 'https://live.websocket.test/';

interface Refusal {
  status: number;
  body: string;
}

/** Open a socket to the BFF; resolves with the open socket, or with the HTTP refusal of the handshake. */
function connect(url: string, headers: Record<string, string>): Promise<WebSocket | Refusal> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
}

function isSocket(x: WebSocket | Refusal): x is WebSocket {
  return x instanceof WebSocket;
}

describe('WebSocket routes', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let upstream: WebSocketServer;
  let upstreamUrl: string;
  const handshakes: IncomingHttpHeaders[] = [];
  const browser = new TestBrowser();
  let cookie = '';
  let wsBase = '';
  let clientKey: Awaited<ReturnType<typeof makeClientKey>>;
  const sessionKey = randomBytes(32).toString('base64url');

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    clientKey = key;
    idp = await startDevIdp({
      clients: [clientMetadata('bff-ws', `http://127.0.0.1:${port}`, key)],
      resourceAudience: RESOURCE,
    });
    upstream = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(upstream, 'listening');
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    upstream.on('connection', (socket, request) => {
      handshakes.push(request.headers);
      socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    });
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'bff-ws',
      key,
      sessionKey,
      routes: {
        live: { url: `${upstreamUrl}/feed`, token: 'user', websocket: true },
        plain: { url: upstreamUrl, token: 'user' },
      },
      // Long: a logout on this instance must close sockets at once, not at the next re-check.
      env: { MS_BFF_WEBSOCKET_RECHECK_SECONDS: '3600' },
    });
    wsBase = `ws://127.0.0.1:${port}`;
  });
  after(async () => {
    await bff?.close();
    for (const client of upstream?.clients ?? []) client.terminate();
    await new Promise((resolve) => upstream?.close(resolve));
    await idp?.close();
  });
  beforeEach(async () => {
    handshakes.length = 0;
    if (!cookie) {
      await fullLogin(browser, bff.url, idp);
      cookie = `__Host-bff-session=${browser.cookie(bff.url, '__Host-bff-session')?.value}`;
    }
  });

  it('echoes messages through the BFF with the user’s token on the upstream handshake, and no cookie', async () => {
    const ws = await connect(`${wsBase}/api/live/room/1`, { cookie, origin: bff.url });
    assert.ok(isSocket(ws), JSON.stringify(ws));
    ws.send('hello');
    const [text] = (await once(ws, 'message')) as [Buffer];
    assert.equal(text.toString(), 'hello');
    ws.send(Buffer.from([1, 2, 3]));
    const [binary, isBinary] = (await once(ws, 'message')) as [Buffer, boolean];
    assert.deepEqual([...binary], [1, 2, 3]);
    assert.equal(isBinary, true);

    assert.equal(handshakes.length, 1);
    const seen = handshakes[0] as IncomingHttpHeaders;
    assert.equal(seen.cookie, undefined, 'the browser cookie never goes upstream');
    assert.match(String(seen.authorization), /^Bearer /);
    const jwks = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`));
    const token = String(seen.authorization).slice('Bearer '.length);
    const { payload } = await jwtVerify(token, jwks, { issuer: idp.issuer, audience: RESOURCE });
    assert.equal(payload.sub, 'alice');
    ws.close();
    await once(ws, 'close');
  });

  it('refuses a handshake from another origin (cross-site WebSocket hijacking) before any upstream call', async () => {
    for (const origin of ['http://evil.example', 'null']) {
      const res = await connect(`${wsBase}/api/live/x`, { cookie, origin });
      assert.ok(!isSocket(res));
      assert.equal(res.status, 403);
      assert.equal((JSON.parse(res.body) as { code: string }).code, 'BFF_CSRF_FAILED');
    }
    const noOrigin = await connect(`${wsBase}/api/live/x`, { cookie });
    assert.ok(!isSocket(noOrigin));
    assert.equal(noOrigin.status, 403);
    assert.equal(handshakes.length, 0);
  });

  it('refuses a handshake without a session (401) and on a route without websocket (404)', async () => {
    const anonymous = await connect(`${wsBase}/api/live/x`, { origin: bff.url });
    assert.ok(!isSocket(anonymous));
    assert.equal(anonymous.status, 401);
    assert.equal((JSON.parse(anonymous.body) as { code: string }).code, 'BFF_SESSION_REQUIRED');
    const plain = await connect(`${wsBase}/api/plain/x`, { cookie, origin: bff.url });
    assert.ok(!isSocket(plain));
    assert.equal(plain.status, 404);
    assert.equal(handshakes.length, 0);
  });

  it('refuses dot segments in the socket path like any proxied path', async () => {
    const res = await connect(`${wsBase}/api/live/..%2f..%2fadmin`, { cookie, origin: bff.url });
    assert.ok(!isSocket(res));
    assert.equal(res.status, 400);
    assert.equal(handshakes.length, 0);
  });

  it(
    'closes the socket (4401) and the upstream connection when the user logs out',
    { timeout: 30_000 },
    async () => {
      const ws = await connect(`${wsBase}/api/live/room/2`, { cookie, origin: bff.url });
      assert.ok(isSocket(ws));
      ws.send('ping');
      await once(ws, 'message');
      const upstreamSocket = [...upstream.clients][0];
      assert.ok(upstreamSocket);
      const upstreamClosed = once(upstreamSocket, 'close');
      const closed = once(ws, 'close') as Promise<[number, Buffer]>;
      const res = await browser.request(`${bff.url}/auth/logout`, {
        method: 'POST',
        headers: { 'x-csrf': '1', 'sec-fetch-site': 'same-origin', accept: 'application/json' },
      });
      assert.equal(res.status, 200);
      const [code] = await closed;
      assert.equal(code, WS_CLOSE.sessionEnded);
      await upstreamClosed;
      cookie = '';
    },
  );

  it(
    'closes the socket when the session ends on another instance (noticed by the periodic re-check)',
    { timeout: 30_000 },
    async () => {
      // A second BFF sharing nothing but the store stands for "another instance": it deletes the
      // session the way its logout would, without this instance's end-of-session hook firing.
      await fullLogin(browser, bff.url, idp);
      cookie = `__Host-bff-session=${browser.cookie(bff.url, '__Host-bff-session')?.value}`;
      const fast = await startBff({
        port: await freePort(),
        issuer: idp.issuer,
        clientId: 'bff-ws',
        key: clientKey,
        store: bff.store,
        sessionKey,
        routes: { live: { url: upstreamUrl, token: 'user', websocket: true } },
        env: { MS_BFF_WEBSOCKET_RECHECK_SECONDS: '1' },
      });
      try {
        const ws = await connect(`${fast.url.replace('http', 'ws')}/api/live/x`, {
          cookie,
          origin: fast.url,
        });
        assert.ok(isSocket(ws), JSON.stringify(ws));
        const closed = once(ws, 'close') as Promise<[number, Buffer]>;
        const session = await bff.services.sessions.load(cookie.split('=')[1]);
        assert.ok(session);
        await bff.store.delete(session.key);
        const [code] = await closed;
        assert.equal(code, WS_CLOSE.sessionEnded);
      } finally {
        await fast.close();
      }
    },
  );
});
