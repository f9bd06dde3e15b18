import { loadConfig } from '../config/load.js';
import { registrationRequestBody } from '../oauth/client-metadata.js';
import { type CliCommand, parseFlags } from './command.js';
import { chooseFrontend, FRONTEND_OPTION, frontendConfig } from './frontend-choice.js';

export const command: CliCommand = {
  name: 'client-metadata',
  summary: 'print the client metadata `register` would send',
  usage: `Usage: fapi-bff client-metadata [--frontend NAME]

Prints, as JSON, the client metadata (RFC 7591 §2) that the configuration in the environment needs
at the IdP: exactly the body \`fapi-bff register\` sends. Reads the same variables as \`fapi-bff start\`.
With several frontends in the MS_BFF_CONFIG file, --frontend names the one whose client to print
(its redirect URI, back-channel logout URI and JWKS are under its pathPrefix); without it, the
command names the frontends and exits with status 2.
`,
  async run(io) {
    const { values } = parseFlags(io.args, FRONTEND_OPTION);
    // Like `register`, it needs no OIDC_CLIENT_ID: the IdP assigns it (the placeholder is not printed).
    const config = await loadConfig(io.env, { unregistered: true });
    const chosen = frontendConfig(config, chooseFrontend(config, values.frontend));
    io.stdout.write(`${JSON.stringify(registrationRequestBody(chosen), null, 2)}\n`);
    return 0;
  },
};
