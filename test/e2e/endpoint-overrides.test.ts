/**
 * OIDC_AUTHORIZATION_URL and OIDC_TOKEN_URL replace the discovered endpoints, with PAR on, and keep
 * doing so after a metadata refresh (a refresh re-reads the discovery document, which names the
 * IdP's own endpoints). A gateway in front of oidc-provider serves both overrides: it records each
 * call and passes it on (a redirect for the browser, a forwarded POST for the token request).
 */
import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';

describe('authorization and token endpoint overrides (PAR, metadata refresh)', { timeout: 60_000 }, () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let gateway: Server;
  const hits: { path: string; params: string[] }[] = [];

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey();
    idp = await startDevIdp({ clients: [clientMetadata('overrides', `http://127.0.0.1:${port}`, key)] });
    const md = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Record<
      string,
      string
    >;
    gateway = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://gateway');
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        if (req.method === 'GET' && url.pathname === '/authorize') {
          hits.push({ path: url.pathname, params: [...url.searchParams.keys()].sort() });
          res.writeHead(302, { location: `${md.authorization_endpoint}${url.search}` }).end();
          return;
        }
        if (req.method === 'POST' && url.pathname === '/token') {
          hits.push({ path: url.pathname, params: [...new URLSearchParams(body).keys()].sort() });
          const headers: Record<string, string> = { 'content-type': String(req.headers['content-type']) };
          if (req.headers.authorization) headers.authorization = req.headers.authorization;
          void fetch(md.token_endpoint as string, { method: 'POST', headers, body }).then(async (r) => {
            res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
            res.end(Buffer.from(await r.arrayBuffer()));
          });
          return;
        }
        res.writeHead(404).end();
      });
    });
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
    const gw = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'overrides',
      key,
      env: { OIDC_AUTHORIZATION_URL: `${gw}/authorize`, OIDC_TOKEN_URL: `${gw}/token` },
    });
  });
  after(async () => {
    await bff?.close();
    gateway?.closeAllConnections();
    await new Promise((r) => gateway?.close(r));
    await idp?.close();
  });

  async function loginThroughGateway(): Promise<void> {
    hits.length = 0;
    const res = await fullLogin(new TestBrowser(), bff.url, idp);
    assert.equal(res.status, 302, await res.text());
    const authorize = hits.filter((h) => h.path === '/authorize');
    const token = hits.filter((h) => h.path === '/token');
    assert.equal(authorize.length, 1, 'the browser went to the overridden authorization endpoint');
    // PAR (RFC 9126 §4): only client_id and request_uri travel through the browser.
    assert.deepEqual(authorize[0]?.params, ['client_id', 'request_uri']);
    assert.equal(token.length, 1, 'the code was exchanged at the overridden token endpoint');
    assert.ok(token[0]?.params.includes('code'));
  }

  it('logs in through both overrides with PAR', async () => {
    await loginThroughGateway();
  });

  it('still uses them after a metadata refresh', async () => {
    assert.equal(await bff.services.idp.refreshMetadata(), true);
    await loginThroughGateway();
  });
});
