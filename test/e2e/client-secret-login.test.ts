/**
 * Full logins with `client_secret_basic` and `client_secret_post` (development profile; production
 * refuses both), against oidc-provider registered for exactly that method: a login succeeds only if
 * the BFF authenticated at PAR and at the token endpoint the way it was told to. The IdP-side view
 * of each call (Authorization header or client_secret form field) is recorded and checked too.
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
import { fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';

const METHODS = ['client_secret_basic', 'client_secret_post'] as const;
const SECRET = 'a-development-secret-of-enough-length-0123456789';

interface Seen {
  path: string;
  basic: boolean;
  postedSecret: boolean;
}

describe('client_secret_basic and client_secret_post logins (development profile)', () => {
  let idp: DevIdp;
  const bffs = new Map<string, RunningBff>();
  const seen = new Map<string, Seen[]>();

  before(async () => {
    const ports = new Map<string, number>();
    for (const m of METHODS) ports.set(m, await freePort());
    const key = await makeClientKey();
    idp = await startDevIdp({
      clients: METHODS.map((m) => {
        const {
          jwks: _jwks,
          token_endpoint_auth_signing_alg: _alg,
          ...meta
        } = clientMetadata(`bff-${m}`, `http://127.0.0.1:${ports.get(m)}`, key);
        return { ...meta, token_endpoint_auth_method: m, client_secret: SECRET };
      }),
    });
    // What each client-authenticated call carried, as oidc-provider parsed it.
    type Ctx = {
      path: string;
      get(name: string): string;
      oidc?: { body?: Record<string, unknown>; client?: { clientId: string } };
    };
    const record = (ctx: Ctx) => {
      const clientId = ctx.oidc?.client?.clientId;
      if (!clientId) return;
      const list = seen.get(clientId) ?? [];
      list.push({
        path: ctx.path,
        basic: /^Basic /i.test(ctx.get('authorization')),
        postedSecret: typeof ctx.oidc?.body?.client_secret === 'string',
      });
      seen.set(clientId, list);
    };
    idp.provider.on('pushed_authorization_request.success', record);
    idp.provider.on('grant.success', record);
    for (const m of METHODS) {
      bffs.set(
        m,
        await startBff({
          port: ports.get(m) as number,
          issuer: idp.issuer,
          clientId: `bff-${m}`,
          env: { MS_BFF_TOKEN_AUTH_METHOD: m, OIDC_CLIENT_SECRET: SECRET },
        }),
      );
    }
  });
  after(async () => {
    for (const bff of bffs.values()) await bff.close();
    await idp?.close();
  });

  for (const m of METHODS) {
    it(`logs in with ${m} at PAR and token`, async () => {
      const bff = bffs.get(m) as RunningBff;
      const res = await fullLogin(new TestBrowser(), bff.url, idp);
      assert.equal(res.status, 302, await res.text());
      assert.ok(res.headers.get('set-cookie')?.includes('__Host-bff-session='));
      const calls = seen.get(`bff-${m}`) ?? [];
      assert.ok(calls.length >= 2, `PAR and token calls recorded: ${JSON.stringify(calls)}`);
      for (const call of calls) {
        assert.equal(call.basic, m === 'client_secret_basic', `${call.path}: Basic header`);
        assert.equal(
          call.postedSecret,
          m === 'client_secret_post',
          `${call.path}: client_secret in the body`,
        );
      }
    });
  }
});
