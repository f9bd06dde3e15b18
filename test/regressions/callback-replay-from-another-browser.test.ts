/**
 * Attack: using up a victim's login by replaying its callback URL from another browser
 * (security review, finding 6).
 *
 * The login transaction was taken (read and deleted) from the store before the browser binding was
 * checked, so anyone who saw a callback URL (a shared screen, a proxy log, a Referer) could send it
 * first from their own browser: refused for the wrong binding, but the transaction was gone and the
 * victim's own callback then failed.
 *
 * Fixed when: a callback from another browser (with no binding cookie, or with its own) is refused
 * and leaves the transaction in place, so the browser that started the login still completes it.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { errorCode, loginUntilCallback, startLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';

describe('regression: a callback replayed from another browser used up the login', () => {
  let idp: DevIdp;
  let bff: RunningBff;

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({ clients: [clientMetadata('bff-cb', `http://127.0.0.1:${port}`, key)] });
    bff = await startBff({ port, issuer: idp.issuer, clientId: 'bff-cb', key });
  });
  after(async () => {
    await bff?.close();
    await idp?.close();
  });

  it("another browser's replay is refused and the victim still signs in", async () => {
    const victim = new TestBrowser();
    const callback = await loginUntilCallback(victim, bff.url, idp, '/victim');

    const stranger = new TestBrowser();
    const bare = await stranger.request(callback);
    assert.equal(bare.status, 400);
    assert.equal(await errorCode(bare), 'BFF_CALLBACK_STATE_MISMATCH');

    // An attacker with a valid binding cookie of its own (from starting a login of its own).
    const attacker = new TestBrowser();
    await startLogin(attacker, bff.url, idp.issuer);
    const bound = await attacker.request(callback);
    assert.equal(bound.status, 400);
    assert.equal(await errorCode(bound), 'BFF_CALLBACK_STATE_MISMATCH');

    const own = await victim.request(callback);
    assert.equal(own.status, 302, await own.text());
    assert.equal(own.headers.get('location'), '/victim');
    assert.ok(victim.cookie(bff.url, '__Host-bff-session'));

    const again = await victim.request(callback);
    assert.equal(await errorCode(again), 'BFF_CALLBACK_TRANSACTION_EXPIRED', 'still single use');
  });
});
