import type { CliCommand } from './command.js';
import { parseFlags } from './command.js';

export const command: CliCommand = {
  name: 'start',
  summary: 'run the BFF server',
  usage: `Usage: fapi-bff start

Runs the BFF (what \`npm start\` runs). Configuration comes from the environment and the file named
by MS_BFF_CONFIG (docs/configuration.md). Without OIDC_ISSUER it starts the development setup: an
embedded IdP, a demo API and a demo SPA.
`,
  async run(io) {
    parseFlags(io.args, {});
    const { start } = await import('../main.js');
    await start();
    return undefined;
  },
};
