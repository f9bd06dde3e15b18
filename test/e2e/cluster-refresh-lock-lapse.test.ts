/**
 * Two BFF instances (A and B) on one Redis, against oidc-provider, which rotates refresh tokens:
 * A's refresh grant is refused (invalid_grant) because B rotated the refresh token while A's grant
 * was on its way. A must answer with the session B stored, not end it with a 401 (the
 * "another writer rotated it" branch of AccessTokens.onRefreshError, for the main refresh and
 * for a per-resource refresh, RFC 8707 §2.2).
 *
 * How the race happens: refreshes of one session are serialised by a store lock whose TTL
 * (2 × MS_BFF_IDP_TIMEOUT_MS + 5 s) outlasts any token request a live process can make, so the
 * lock only lapses under a running grant when the holder stalls past the TTL (GC pause, a frozen
 * VM or container) or Redis loses the key (failover with asynchronous replication). Neither can be
 * produced deterministically here, so the test stands in for them: A's token request is held in
 * front of the IdP (a slow token endpoint), and while it is held the lock is expired (PEXPIRE
 * through the store's `touch`, as if its TTL had run out). B then takes the lock and refreshes for
 * real; only then does A's request reach oidc-provider. Everything else is real: oidc-provider, two
 * BFF instances, Redis on 127.0.0.1:6379.
 *
 * oidc-provider revokes the whole grant when a spent refresh token is replayed (RFC 9700 §4.14.2):
 * A then answers with the tokens B stored (what matters here: not a 401), for the main refresh and
 * for a resource whose token B obtained too. When B rotated the refresh token without obtaining
 * the resource's token (B refreshed the main token), A retries the resource grant with the rotated
 * refresh token, which needs a live grant: that case runs against an IdP that forgets a spent
 * refresh token instead (it is destroyed at oidc-provider after B's rotation, so A's replay is
 * refused as unknown, invalid_grant, without revoking the grant).
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { clientMetadata, freePort, makeClientKey, type RunningBff } from '../helpers/bff-harness.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { startBffPair } from '../helpers/stack.js';
import { TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

const CLIENT_ID = 'bff-lock-lapse';
const COOKIE = '__Host-bff-session';
const MAIN = 'https://main.lock-lapse.test/';
const ORDERS = 'https://orders.lock-lapse.test/';
const WAIT_MS = 30_000;

/** Polls `condition` every 20 ms for at most WAIT_MS; fails with `what` when it never holds. */
async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

describe('a refresh refused because another instance rotated the token meanwhile', () => {
  let idp: DevIdp;
  let a: RunningBff;
  let b: RunningBff;
  let upstream: RecordingUpstream;
  let skewMs = 0;
  /** While armed, the next POST /token waits (unread) in front of oidc-provider until released. */
  let hold: { arrived: boolean; gate: Promise<void> } | undefined;
  let release: () => void = () => undefined;
  /** The refresh_token grants oidc-provider refused (its error codes). */
  const refused: string[] = [];

  before(async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({
      clients: [clientMetadata(CLIENT_ID, `http://127.0.0.1:${portA}`, key)],
      resourceAudience: MAIN,
      moreResourceAudiences: [ORDERS],
      wrapHandler: (handler) => (req, res) => {
        const held = hold;
        if (held && !held.arrived && req.method === 'POST' && req.url === '/token') {
          held.arrived = true;
          void held.gate.then(() => handler(req, res));
          return;
        }
        handler(req, res);
      },
    });
    idp.provider.on('grant.error', (ctx: { oidc: { params?: Record<string, unknown> } }, err: Error) => {
      if (ctx.oidc.params?.grant_type === 'refresh_token')
        refused.push((err as { error?: string }).error ?? '');
    });
    upstream = await startRecordingUpstream();
    [a, b] = await startBffPair({
      ports: [portA, portB],
      prefix: 'bff-lock-lapse',
      issuer: idp.issuer,
      clientId: CLIENT_ID,
      key,
      routes: { echo: upstream.url, orders: { url: upstream.url, token: 'user', resource: ORDERS } },
      clock: () => Date.now() + skewMs,
      // One origin for both instances, as behind a load balancer.
      env: { MS_BFF_PUBLIC_URL: `http://127.0.0.1:${portA}` },
    });
  });
  after(async () => {
    release();
    await a?.close();
    await b?.close();
    await upstream?.close();
    await idp?.close();
  });

  /** A session logged in through A, used through A (`viaA`) and B (`viaB`). */
  async function login() {
    const viaA = new TestBrowser();
    assert.equal((await fullLogin(viaA, a.url, idp)).status, 302);
    const cookie = viaA.cookie(a.url, COOKIE)?.value;
    const session = await a.services.sessions.load(cookie);
    assert.ok(cookie && session?.data.refreshToken);
    const viaB = new TestBrowser();
    viaB.setCookie(b.url, COOKIE, cookie);
    return { viaA, viaB, key: session.key, spent: session.data.refreshToken };
  }

  /**
   * Calls `path` through A with its token request held at the IdP, lets the refresh lock lapse,
   * calls `pathB` through B (which refreshes for real), runs `afterB`, then lets A's grant through.
   * Returns A's response.
   */
  async function race(
    session: Awaited<ReturnType<typeof login>>,
    path: string,
    afterB = async () => {},
    pathB = path,
  ) {
    hold = {
      arrived: false,
      gate: new Promise<void>((resolve) => {
        release = resolve;
      }),
    };
    const callA = apiCall(session.viaA, a.url, `${path}/a`);
    await until("A's token request reached the IdP", () => hold?.arrived === true);
    const lock = `refresh-lock:${session.key}`;
    assert.ok(await a.store.get(lock), 'A holds the refresh lock while its grant is on its way');
    assert.ok(await a.store.touch(lock, 1), "the lock's TTL runs out");
    await until('the lock is gone', async () => (await a.store.get(lock)) === undefined);

    const resB = await apiCall(session.viaB, b.url, `${pathB}/b`);
    assert.equal(resB.status, 200, `B refreshed: ${await resB.text()}`);
    const stored = await b.services.sessions.reload(session.key);
    assert.ok(stored?.data.refreshToken && stored.data.refreshToken !== session.spent, 'B rotated it');
    await afterB();

    const refusedBefore = refused.length;
    release();
    hold = undefined;
    const resA = await callA;
    assert.deepEqual(
      refused.slice(refusedBefore, refusedBefore + 1),
      ['invalid_grant'],
      "A's grant was refused",
    );
    return resA;
  }

  /** The bearer token the upstream received for the request to `path`. */
  function tokenSentFor(path: string): string | undefined {
    return upstream.requests.find((r) => r.url === path)?.headers.authorization?.replace(/^Bearer /, '');
  }

  it('main refresh: A answers with the session B stored instead of ending it', async () => {
    const session = await login();
    skewMs += 301_000; // the access token is stale on both instances: the next call refreshes
    const resA = await race(session, '/api/echo/main');
    assert.equal(resA.status, 200, `A used B's refresh: ${await resA.text()}`);
    const stored = await a.services.sessions.reload(session.key);
    assert.ok(stored, 'the session was not ended');
    assert.equal(tokenSentFor('/main/a'), stored.data.accessToken, "A sent B's access token");
    assert.equal(tokenSentFor('/main/b'), stored.data.accessToken);
  });

  it('resource refresh: A uses the resource token B obtained instead of a second grant', async () => {
    const session = await login();
    // A and B both need a token for ORDERS (none yet), with the same refresh token.
    const refusedBefore = refused.length;
    const resA = await race(session, '/api/orders/resource');
    assert.equal(resA.status, 200, `A used B's resource token: ${await resA.text()}`);
    const stored = await a.services.sessions.reload(session.key);
    assert.ok(stored, 'the session was not ended');
    const sent = tokenSentFor('/resource/a');
    assert.ok(sent);
    assert.deepEqual(decodeJwt(sent).aud, ORDERS, 'A sent a token for ORDERS');
    assert.equal(sent, tokenSentFor('/resource/b'), 'the one B obtained');
    assert.equal(sent, stored.data.resourceTokens?.[ORDERS]?.accessToken);
    assert.equal(refused.length, refusedBefore + 1, 'no grant after the refused one');
  });

  it('resource refresh: A retries with the refresh token B rotated for the main token, and keeps the session', async () => {
    const session = await login();
    skewMs += 301_000; // B's call renews the main token; A's needs a token for ORDERS (none yet)
    const resA = await race(
      session,
      '/api/orders/retry',
      async () => {
        const spent = await idp.provider.RefreshToken.find(session.spent);
        assert.ok(spent?.consumed, "B's grant spent the refresh token A is about to send");
        await spent.destroy();
      },
      '/api/echo/renew',
    );
    assert.equal(resA.status, 200, `A retried with the rotated token: ${await resA.text()}`);
    const stored = await a.services.sessions.reload(session.key);
    assert.ok(stored, 'the session was not ended');
    const sent = tokenSentFor('/retry/a');
    assert.ok(sent);
    assert.deepEqual(decodeJwt(sent).aud, ORDERS, 'A sent a token for ORDERS');
    assert.equal(sent, stored.data.resourceTokens?.[ORDERS]?.accessToken);
    // Every refresh token stored is live: the main token renews with it.
    skewMs += 301_000;
    assert.equal((await apiCall(session.viaA, a.url, '/api/echo/after')).status, 200);
  });
});
