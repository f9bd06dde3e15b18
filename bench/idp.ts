/**
 * The dev IdP for the benchmark logins, forked by `run.ts` with its options as JSON in argv[2].
 *
 * It runs in its own process, like a real IdP, for a measured reason: oidc-provider (and Koa) use
 * AsyncLocalStorage, and on Node 20 one `als.run()` turns on promise hooks for the whole process.
 * In the driver process that taxed every promise of the proxies under test (promiseInitHook,
 * lookupPublicResource, _propagate: ~3 % of the BFF's CPU in a profile) — a cost the BFF does not
 * pay in production, and one that weighs more on the promise-heavy BFF than on reply-from.
 */
import { type DevIdpOptions, startDevIdp } from '../src/dev/idp.js';
import type { ChildReady } from './protocol.js';

const options = JSON.parse(process.argv[2] ?? '{}') as DevIdpOptions;
const idp = await startDevIdp(options);
process.on('disconnect', () => {
  void idp.close().finally(() => process.exit(0));
});
const ready: ChildReady = { type: 'ready', url: idp.issuer };
process.send?.(ready);
