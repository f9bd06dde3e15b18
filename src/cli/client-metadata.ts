import { loadConfig } from '../config/load.js';
import { registrationRequestBody } from '../oauth/client-metadata.js';
import { type CliCommand, parseFlags } from './command.js';

export const command: CliCommand = {
  name: 'client-metadata',
  summary: 'print the client metadata `register` would send',
  usage: `Usage: fapi-bff client-metadata

Prints, as JSON, the client metadata (RFC 7591 §2) that the configuration in the environment needs
at the IdP: exactly the body \`fapi-bff register\` sends. Reads the same variables as \`fapi-bff start\`.
`,
  async run(io) {
    parseFlags(io.args, {});
    // Like `register`, it needs no OIDC_CLIENT_ID: the IdP assigns it (the placeholder is not printed).
    const config = await loadConfig({ ...io.env, OIDC_CLIENT_ID: io.env.OIDC_CLIENT_ID ?? 'unregistered' });
    io.stdout.write(`${JSON.stringify(registrationRequestBody(config), null, 2)}\n`);
    return 0;
  },
};
