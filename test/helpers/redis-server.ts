import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { freePort } from './ports.js';

/**
 * Private redis-server processes for tests that kill, pause, restart or reconfigure Redis: the
 * shared Redis on 6379 belongs to everyone and is never touched that way. Each server listens on
 * a free loopback port, persists nothing, and is killed when the test process exits.
 */

/** Why Redis-process tests are skipped, or false when redis-server is installed. */
export const REDIS_SERVER_MISSING: string | false =
  spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error === undefined
    ? false
    : 'redis-server is not on PATH';

export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** The current process (a new one after `restart`). */
  readonly child: ChildProcess;
  /** SIGSTOP: the server keeps its connections but answers nothing (a hung Redis). */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
  /** SIGKILL and wait for the exit: connections drop, the data is gone. */
  kill(): Promise<void>;
  /** Start a fresh server on the same port (after `kill`). */
  restart(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Start a private redis-server; resolves once it accepts connections (at most `readyTimeoutMs`). */
export async function startRedisServer(
  opts: { port?: number; args?: readonly string[]; readyTimeoutMs?: number } = {},
): Promise<PrivateRedis> {
  const port = opts.port ?? (await freePort());
  const launch = () => launchRedis(port, opts.args ?? [], opts.readyTimeoutMs ?? 10_000);
  let child = await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get child() {
      return child;
    },
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    kill: () => killChild(child),
    async restart() {
      await killChild(child);
      child = await launch();
    },
  };
}

async function launchRedis(
  port: number,
  args: readonly string[],
  readyTimeoutMs: number,
): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server on ${port} did not start within ${readyTimeoutMs} ms: ${output}`));
    }, readyTimeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server on ${port} exited with ${code}: ${output}`));
    });
  });
  // Keep draining its output so a chatty server never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGCONT');
  child.kill('SIGKILL');
  await exited;
}
