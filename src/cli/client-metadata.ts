import { loadConfig } from '../config/load.js';
import { registrationRequestBody } from '../oauth/client-metadata.js';
import { type CliCommand, parseFlags, UsageError } from './command.js';

export const command: CliCommand = {
  name: 'client-metadata',
  summary: 'print the client metadata `register` would send',
  usage: `Usage: fapi-bff client-metadata [--frontend NAME]

Prints, as JSON, the client metadata (RFC 7591 §2) that the configuration in the environment needs
at the IdP: exactly the body \`fapi-bff register\` sends. Reads the same variables as \`fapi-bff start\`.
With several frontends in the MS_BFF_CONFIG file, --frontend names the one whose client to print
(its redirect URI, back-channel logout URI and JWKS are under its pathPrefix).
`,
  async run(io) {
    const { values } = parseFlags(io.args, { frontend: { type: 'string' } });
    // Like `register`, it needs no OIDC_CLIENT_ID: the IdP assigns it (the placeholder is not printed).
    const config = await loadConfig({ ...io.env, OIDC_CLIENT_ID: io.env.OIDC_CLIENT_ID ?? 'unregistered' });
    const names = config.frontends.map((f) => f.name);
    const wanted = values.frontend ?? (names.length === 1 ? names[0] : undefined);
    const frontend = config.frontends.find((f) => f.name === wanted);
    if (!frontend) {
      throw new UsageError(
        `${values.frontend ? `no frontend named ${values.frontend}` : 'several frontends'}: name one with --frontend (${names.join(', ')})`,
      );
    }
    const chosen = config.frontends.length === 1 ? config : frontend.config;
    io.stdout.write(`${JSON.stringify(registrationRequestBody(chosen), null, 2)}\n`);
    return 0;
  },
};
