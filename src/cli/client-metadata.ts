import { loadConfig } from '../config/load.js';
import { registrationMetadata } from '../oauth/client-metadata.js';
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
    const config = await loadConfig(io.env);
    io.stdout.write(`${JSON.stringify(registrationMetadata(config), null, 2)}\n`);
    return 0;
  },
};
