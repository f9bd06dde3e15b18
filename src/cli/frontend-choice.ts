import type { BffConfig, FrontendConfig } from '../config/types.js';
import { frontendNamed } from '../config/frontends.js';
import { UsageError } from './command.js';

/** The `--frontend NAME` option of the commands that act on one frontend's client. */
export const FRONTEND_OPTION = { frontend: { type: 'string' } } as const;

/** The frontend a command acts on: the one named by `--frontend`, or the only one. */
export function chooseFrontend(config: BffConfig, name: string | undefined): FrontendConfig {
  const found = frontendNamed(config, name);
  if ('problem' in found) throw new UsageError(`${found.problem}: name one with --frontend (${found.names})`);
  return found;
}

/**
 * The configuration of a chosen frontend. The only one's is the whole configuration (as before
 * frontends existed: its `warnings` and `frontends` included).
 */
export function frontendConfig(config: BffConfig, frontend: FrontendConfig): BffConfig {
  return config.frontends.length === 1 ? config : frontend.config;
}
