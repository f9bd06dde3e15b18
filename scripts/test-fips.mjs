#!/usr/bin/env node
// `npm run test:fips`: build (or reuse) the OpenSSL 3.0 FIPS provider, then run the FIPS end-to-end
// login (test/fips/login.fips.ts) against it. The provider cache lives outside the repository
// (scripts/fips-provider.sh), so only the first run on a machine pays for the build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const built = spawnSync('bash', ['scripts/fips-provider.sh'], {
  stdio: ['ignore', 'pipe', 'inherit'],
  encoding: 'utf8',
});
if (built.status !== 0) {
  console.error('test:fips: the FIPS provider could not be built');
  process.exit(1);
}
const dir = built.stdout.trim().split('\n').pop();
if (!dir || !existsSync(`${dir}/fips.so`)) {
  console.error(`test:fips: no provider in ${dir}`);
  process.exit(1);
}
console.log(`test:fips: provider ${dir}`);
const run = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-reporter=spec', 'dist/test/fips/login.fips.js'],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test', FAPI_BFF_FIPS_DIR: dir } },
);
process.exit(run.status ?? 1);
