/**
 * The real entry point (`node dist/src/main.js`, what `npm start` runs) as a child process, with its
 * output kept (bounded) for assertions and failure messages. Every wait is bounded.
 */
import { type ChildProcess, spawn } from 'node:child_process';

/** Variables that would steer the BFF away from what a newcomer's `npm start` does (e.g. CI's REDIS_URL). */
const CONFIG_ENV =
  /^(OIDC_|MS_BFF_|BFF_|MTLS_|FIPS_MODE$|HOST$|PORT$|REDIS_URL$|LOG_LEVEL$|NODE_TEST_CONTEXT$)/;

export interface MainProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when `text` appears on stdout; rejects when the process exits first or time runs out. */
  waitFor(text: string | RegExp, ms?: number): Promise<void>;
  /** Resolves with the exit code (SIGKILL after `ms`). */
  exited(ms?: number): Promise<number | null>;
  stop(): Promise<void>;
}

export function startMain(
  env: Record<string, string>,
  args: string[] = [],
  script = 'dist/src/main.js',
): MainProcess {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !CONFIG_ENV.test(k)));
  const child = spawn(process.execPath, [script, ...args], {
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out = (out + d.toString()).slice(-50_000);
  });
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-50_000);
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const matches = (text: string | RegExp) => (typeof text === 'string' ? out.includes(text) : text.test(out));

  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async waitFor(text, ms = 30_000) {
      const deadline = Date.now() + ms;
      while (!matches(text)) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(
            `main exited (${child.exitCode ?? child.signalCode}) before printing ${text}\n${out}\n${err}`,
          );
        }
        if (Date.now() > deadline)
          throw new Error(`main did not print ${text} within ${ms} ms\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async exited(ms = 20_000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      try {
        return await exit;
      } finally {
        clearTimeout(timer);
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** The built command-line tool, as package.json's `bin` names it. */
export const CLI = 'dist/src/cli/fapi-bff.js';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `script` (default: the CLI) to completion with only PATH, LOG_LEVEL=silent and `env` in its
 * environment, so nothing of the test runner's configuration leaks in. SIGKILL after `ms`.
 */
export function runToExit(
  args: string[],
  env: Record<string, string>,
  opts: { script?: string; ms?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [opts.script ?? CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.ms ?? 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The JSON report of `fapi-bff check --format json`. */
export interface CheckReport {
  ok: boolean;
  rows: { requirement: string; status: string; detail: string[] }[];
}
