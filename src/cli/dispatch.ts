import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { type CliCommand, type CliIo, UsageError, wantsHelp } from './command.js';

/** Subcommands, loaded on demand so `fapi-bff --help` imports nothing heavy. */
const COMMANDS: Record<string, { summary: string; load: () => Promise<CliCommand> }> = {
  start: {
    summary: 'run the BFF server (what `npm start` runs)',
    load: async () => (await import('./start.js')).command,
  },
  check: {
    summary: 'compliance matrix against the live IdP; exit 1 when an enabled feature lacks an IdP capability',
    load: async () => (await import('./check.js')).command,
  },
  keys: {
    summary: 'generate, list and rotate our key sets (next → active → retiring)',
    load: async () => (await import('./keys.js')).command,
  },
  register: {
    summary: 'register the BFF at the IdP (RFC 7591); --update, --show, --delete (RFC 7592)',
    load: async () => (await import('./register.js')).command,
  },
  sessions: {
    summary: 'revoke every session of a user (`sessions revoke --sub SUB`; Redis store)',
    load: async () => (await import('./sessions.js')).command,
  },
  'client-metadata': {
    summary: 'print the client metadata `register` would send (RFC 7591)',
    load: async () => (await import('./client-metadata.js')).command,
  },
};

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function topHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return [
    'Usage: fapi-bff <command> [options]',
    '',
    'A FAPI 2.0 Backend-for-Frontend. Configuration comes from the environment (see docs/configuration.md).',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  --help     this text (also `fapi-bff <command> --help`)',
    '  --version  the version of fapi-bff',
    '',
  ].join('\n');
}

/**
 * `fapi-bff <command> [args]`: exit status 0 on success, 1 on failure (including an invalid
 * configuration, reported with every problem at once), 2 on a usage error; `undefined` while the
 * server runs.
 */
export async function dispatch(io: CliIo): Promise<number | undefined> {
  const [name, ...rest] = io.args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(topHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write(`${version()}\n`);
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    io.stderr.write(`fapi-bff: unknown command "${name}"\n\n${topHelp()}`);
    return 2;
  }
  const command = await entry.load();
  if (wantsHelp(rest)) {
    io.stdout.write(`${command.usage.trimEnd()}\n`);
    return 0;
  }
  try {
    return await command.run({ ...io, args: rest });
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`fapi-bff ${name}: ${err.message}\n\n${command.usage.trimEnd()}\n`);
      return 2;
    }
    if (err instanceof ConfigError) {
      io.stderr.write(`${err.toString()}\n`);
      return 1;
    }
    io.stderr.write(`fapi-bff ${name}: ${(err as Error).message}\n`);
    return 1;
  }
}
