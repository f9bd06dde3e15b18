import { loadConfig } from '../config/load.js';
import { registrationMetadata } from '../oauth/client-metadata.js';
import { ConfigError } from '../errors.js';

/**
 * `npm run client-metadata`: print the registration metadata the IdP needs for the configuration in
 * the environment (the same variables `npm start` reads), as JSON.
 */
try {
  const config = await loadConfig(process.env);
  process.stdout.write(`${JSON.stringify(registrationMetadata(config), null, 2)}\n`);
} catch (err) {
  process.stderr.write(`${err instanceof ConfigError ? err.toString() : String(err)}\n`);
  process.exit(1);
}
