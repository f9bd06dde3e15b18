/**
 * The MS_BFF_CONFIG file's `frontends` list (issue 10, CONTRACT "Frontends"): the shape, every
 * problem at once with its path, the cookie rules per pathPrefix, environment defaults, and the
 * environment-only configuration unchanged (one frontend, `default`).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { writeRegistrationFile } from '../../src/registration/file.js';
import { configProblems, minimalEnv } from '../helpers/bff-harness.js';

async function baseEnv(file: string): Promise<Record<string, string>> {
  // No OIDC_CLIENT_ID, MS_BFF_PUBLIC_URL or MS_BFF_ROUTES: the frontends carry them.
  const { OIDC_CLIENT_ID: _clientId, MS_BFF_PUBLIC_URL: _publicUrl, ...env } = await minimalEnv();
  return { ...env, MS_BFF_CONFIG: file };
}

function writeConfig(doc: unknown, ext = 'json'): string {
  const dir = mkdtempSync(join(tmpdir(), 'bff-frontends-'));
  const file = join(dir, `bff.${ext}`);
  writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return file;
}

const BANKING = {
  name: 'banking',
  host: 'banking.example.com',
  publicUrl: 'https://banking.example.com',
  clientId: 'banking-bff',
  scopes: 'openid accounts:read',
  cookieName: '__Host-banking',
  flags: { dpop: true, jar: true, jarm: true, jarmMode: 'query.jwt' },
  routes: { accounts: { url: 'https://accounts.internal/v1', token: 'user' } },
};
const SHOP = {
  name: 'shop',
  pathPrefix: '/shop/',
  publicUrl: 'https://www.example.com',
  clientId: 'shop-bff',
  sessionIdleTimeout: 600,
  postLogoutRedirect: '/shop/',
  routes: { cart: 'https://cart.internal', off: { url: 'https://off.internal', enabled: false } },
};

describe('config file frontends', () => {
  it('loads the CONTRACT shape: own client, flags, cookie, routes; the rest from the environment', async () => {
    const file = writeConfig(
      `frontends:\n${[BANKING, SHOP].map((f) => `  - ${JSON.stringify(f)}`).join('\n')}\n`,
      'yaml',
    );
    const config = await loadConfig(await baseEnv(file));
    assert.deepEqual(
      config.frontends.map((f) => [f.name, f.host, f.pathPrefix, f.storeNamespace]),
      [
        ['banking', 'banking.example.com', '/', 'f:banking:'],
        ['shop', undefined, '/shop/', 'f:shop:'],
      ],
    );
    const [banking, shop] = config.frontends.map((f) => f.config);
    assert.ok(banking && shop);
    assert.equal(banking.oidc.clientId, 'banking-bff');
    assert.equal(banking.oidc.scopes, 'openid accounts:read');
    assert.equal(banking.oidc.dpopEnabled, true);
    assert.equal(banking.jar.enabled, true);
    assert.equal(banking.jarm.enabled, true);
    assert.equal(banking.jarm.mode, 'query.jwt');
    assert.equal(banking.session.cookieName, '__Host-banking');
    assert.equal(banking.session.cookiePath, '/');
    assert.equal(banking.redirectUri, 'https://banking.example.com/auth/callback');
    assert.deepEqual([...banking.routes.keys()], ['accounts']);
    // The second frontend: defaults from the environment, a __Secure- cookie on its path.
    assert.equal(shop.oidc.clientId, 'shop-bff');
    assert.equal(shop.oidc.dpopEnabled, false);
    assert.equal(shop.jarm.enabled, false);
    assert.equal(shop.session.cookieName, '__Secure-bff-shop');
    assert.equal(shop.session.cookiePath, '/shop/');
    assert.equal(shop.session.idleTimeoutSec, 600);
    assert.equal(shop.postLogoutRedirect, '/shop/');
    assert.equal(shop.redirectUri, 'https://www.example.com/shop/auth/callback');
    assert.equal(shop.routes.get('off')?.enabled, false, 'a route kill switch');
    assert.equal(shop.routes.get('cart')?.enabled, true);
    // The top level is the first frontend's view.
    assert.equal(config.oidc.clientId, 'banking-bff');
    assert.ok(Object.isFrozen(config.frontends[1]?.config.session));
  });

  it('without frontends, the environment is one frontend named default, as before', async () => {
    const config = await loadConfig(await minimalEnv());
    assert.equal(config.frontends.length, 1);
    const only = config.frontends[0];
    assert.equal(only?.name, 'default');
    assert.equal(only?.storeNamespace, '', 'sessions keep their store keys');
    assert.equal(only?.config.redirectUri, 'https://app.example.com/auth/callback');
    assert.equal(config.session.cookiePath, '/');
  });

  it('reports every problem of the file at once, each at its path', async () => {
    const file = writeConfig({
      frontends: [
        { ...BANKING, cookieName: 'banking', flags: { dpop: 'maybe', turbo: true } },
        { ...SHOP, name: 'Shop!', cookieName: '__Host-shop' },
        { ...SHOP, pathPrefix: '/shop/', cookieName: '__Host-shop' },
        { ...BANKING, name: 'banking', unknownKey: 1, routes: { x: { url: 'https://x', token: 'magic' } } },
        'not an object',
        {
          name: 'other',
          host: 'other.example.com:8443',
          pathPrefix: 'no-slash',
          publicUrl: 'https://x.example.com',
        },
        {
          name: 'cookies',
          pathPrefix: '/c/',
          publicUrl: 'https://c.example.com',
          clientId: 'c',
          cookieName: '__Host-c',
        },
        { name: 'elsewhere', host: 'a.example.com', publicUrl: 'https://b.example.com', clientId: 'e' },
      ],
    });
    const found = await configProblems(await baseEnv(file));
    const expect: [string, RegExp][] = [
      ['MS_BFF_CONFIG.frontends[0].cookieName', /__Host-/],
      ['MS_BFF_CONFIG.frontends[0].flags.dpop', /true or false|boolean/],
      ['MS_BFF_CONFIG.frontends[0].flags.turbo', /not a flag/],
      ['MS_BFF_CONFIG.frontends[1].name', /\[a-z0-9-\]/],
      ['MS_BFF_CONFIG.frontends[3].name', /also the name of frontends\[0\]/],
      ['MS_BFF_CONFIG.frontends[3].unknownKey', /not a frontend setting/],
      ['MS_BFF_CONFIG.frontends[3].routes.x', /token must be/],
      ['MS_BFF_CONFIG.frontends[3]', /same requests .* frontends\[0\]/],
      ['MS_BFF_CONFIG.frontends[4]', /must be an object/],
      ['MS_BFF_CONFIG.frontends[5].host', /without scheme, port or path/],
      ['MS_BFF_CONFIG.frontends[5].pathPrefix', /path such as/],
      ['MS_BFF_CONFIG.frontends[6].cookieName', /__Secure- under pathPrefix \/c\//],
      ['MS_BFF_CONFIG.frontends[7].publicUrl', /frontend's host a\.example\.com/],
    ];
    for (const [path, message] of expect) {
      assert.match(found.get(path) ?? '(none)', message, `${path}: ${[...found].join('\n')}`);
    }
    // An entry with a shape problem still has its settings checked.
    assert.match(found.get('MS_BFF_CONFIG.frontends[1].cookieName') ?? '', /__Secure-/);
    assert.match(found.get('MS_BFF_CONFIG.frontends[2].cookieName') ?? '', /__Secure-/);
  });

  it("a frontend variable neither the entry nor the environment gives is the entry's problem", async () => {
    const file = writeConfig({ frontends: [{ name: 'a', publicUrl: 'https://a.example.com' }] });
    const found = await configProblems(await baseEnv(file));
    assert.match(found.get('MS_BFF_CONFIG.frontends[0].clientId') ?? '', /required/);
    // The process-wide problem keeps its variable name, reported once.
    const env = { ...(await baseEnv(file)), OIDC_CLIENT_ID: 'from-env', MS_BFF_SESSION_KEYS: 'short' };
    const twice = writeConfig({
      frontends: [
        { name: 'a', host: 'a.example.com', publicUrl: 'https://a.example.com' },
        { name: 'b', host: 'b.example.com', publicUrl: 'https://b.example.com' },
      ],
    });
    const found2 = await configProblems({ ...env, MS_BFF_CONFIG: twice });
    assert.ok(found2.has('MS_BFF_SESSION_KEYS'));
    assert.equal(found2.get('MS_BFF_SESSION_KEYS')?.split(' | ').length, 1, 'reported once');
    assert.ok(!found2.has('MS_BFF_CONFIG.frontends[0].clientId'), 'the environment gave the client id');
  });

  it('refuses an empty or malformed frontends list', async () => {
    for (const frontends of [[], {}, 'x']) {
      const found = await configProblems(await baseEnv(writeConfig({ frontends })));
      assert.match(found.get('MS_BFF_CONFIG.frontends') ?? '', /non-empty list/);
    }
  });

  it("a frontend's own client (clientId or clientRegistrationFile) replaces the environment's", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bff-frontends-reg-'));
    const registered = join(dir, 'banking.json');
    writeRegistrationFile(registered, { client_id: 'registered-banking', issuer: 'https://idp.example.com' });
    const envRegistered = join(dir, 'env.json');
    writeRegistrationFile(envRegistered, { client_id: 'env-registered', issuer: 'https://idp.example.com' });
    const { clientId: _a, ...banking } = BANKING;
    const file = writeConfig({ frontends: [{ ...banking, clientRegistrationFile: registered }, SHOP] });
    // The environment names a client of its own, by id and by registration file: neither is theirs.
    const config = await loadConfig({
      ...(await baseEnv(file)),
      OIDC_CLIENT_ID: 'env-client',
      OIDC_CLIENT_REGISTRATION_FILE: envRegistered,
    });
    assert.deepEqual(
      config.frontends.map((f) => [f.name, f.config.oidc.clientId, f.config.oidc.registration?.file]),
      [
        ['banking', 'registered-banking', registered],
        ['shop', 'shop-bff', undefined],
      ],
    );
    // Not registered yet (`fapi-bff register`): the file is not read, its path is kept.
    const unregistered = await loadConfig(await baseEnv(file), { unregistered: true });
    assert.equal(unregistered.frontends[0]?.config.oidc.registration?.file, registered);
    const missing = writeConfig({
      frontends: [{ ...banking, clientRegistrationFile: join(dir, 'none.json') }],
    });
    const fresh = await loadConfig(await baseEnv(missing), { unregistered: true });
    assert.equal(fresh.oidc.registration?.file, join(dir, 'none.json'));
    assert.equal(fresh.oidc.registration?.clientUri, undefined);
  });
});
