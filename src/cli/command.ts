import { parseArgs, type ParseArgsConfig } from 'node:util';

/** What a subcommand sees: its own arguments and where to write (tests pass buffers). */
export interface CliIo {
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/**
 * One `fapi-bff` subcommand. `run` resolves to the exit status, or to `undefined` when the command
 * keeps the process running (the server).
 */
export interface CliCommand {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(io: CliIo): Promise<number | undefined>;
}

/** A usage problem (unknown flag, missing argument): exit status 2, with the command's usage. */
export class UsageError extends Error {}

/** node:util parseArgs with strict checking, turning its errors into UsageError. */
export function parseFlags<T extends ParseArgsConfig['options']>(
  args: readonly string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function wantsHelp(args: readonly string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}
