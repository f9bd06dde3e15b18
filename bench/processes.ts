/**
 * The bench drivers' child processes: a forked bench script (upstream, IdP, load generator, BFF)
 * answering requests by id over IPC, and the CPU time of a whole process tree.
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChildReady } from './protocol.js';

/**
 * A forked bench script (a path relative to this folder). It announces itself with a `ready`
 * message; then every request carries an `id` that its answer repeats. The channel uses
 * `serialization: 'advanced'`, so typed arrays cross it as such.
 */
export class BenchChild<Req extends { id: number }, Res> {
  readonly proc: ChildProcess;
  /** The child's `ready` message (its URL; a BFF child also its session cookie's name). */
  readonly ready: Promise<ChildReady & { cookieName?: string }>;
  readonly #pending = new Map<number, { resolve(m: Res): void; reject(e: Error): void }>();
  readonly #killAfterMs: number;
  #nextId = 1;
  #exited = false;

  /** `execArgv`: the child's Node options; never inherited (--cpu-prof & co. of a profiled driver). */
  constructor(
    script: string,
    args: string[] = [],
    execArgv: string[] = [],
    opts: { killAfterMs?: number } = {},
  ) {
    this.#killAfterMs = opts.killAfterMs ?? 5000;
    this.proc = fork(fileURLToPath(new URL(script, import.meta.url)), args, {
      execArgv,
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.ready = new Promise((resolve, reject) => {
      this.proc.on(
        'message',
        (m: (ChildReady & { cookieName?: string }) | (Res & { type: string; id?: number })) => {
          if (m.type === 'ready') return resolve(m as ChildReady & { cookieName?: string });
          const id = (m as { id?: number }).id;
          if (id === undefined) return;
          const waiter = this.#pending.get(id);
          this.#pending.delete(id);
          waiter?.resolve(m as Res);
        },
      );
      this.proc.once('exit', (code, signal) => {
        this.#exited = true;
        const err = new Error(`${script} exited (${signal ?? code})`);
        reject(err);
        for (const w of this.#pending.values()) w.reject(err);
        this.#pending.clear();
      });
    });
    this.ready.catch(() => {});
  }

  /** Sends `message` with a fresh id; its answer, or an error after `timeoutMs` or when the child exits. */
  ask(message: Req extends unknown ? Omit<Req, 'id'> : never, timeoutMs = 30_000): Promise<Res> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new Error(
            `no answer to ${(message as { type?: string }).type ?? 'a request'} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.send({ ...message, id });
    });
  }

  /** Disconnect (the child exits on its own), then SIGKILL this child only if it lingers. */
  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    if (this.proc.connected) this.proc.disconnect();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), this.#killAfterMs);
    await exited;
    clearTimeout(timer);
  }

  killNow(): void {
    if (!this.#exited) this.proc.kill('SIGKILL');
  }
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;

/**
 * CPU seconds (user + system, own + reaped children) of `root` and every live descendant, from
 * /proc/<pid>/stat (proc(5)).
 */
export function treeCpuSec(root: number): { cpuSec: number; pids: number } {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the parenthesised command (which may contain spaces): state is field 3.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    const [utime, stime, cutime, cstime] = [rest[11], rest[12], rest[13], rest[14]].map(Number);
    stats.set(Number(name), { ppid, ticks: (utime ?? 0) + (stime ?? 0) + (cutime ?? 0) + (cstime ?? 0) });
  }
  let ticks = 0;
  let pids = 0;
  const add = (pid: number) => {
    const s = stats.get(pid);
    if (!s) return;
    ticks += s.ticks;
    pids++;
    for (const [child, c] of stats) if (c.ppid === pid) add(child);
  };
  add(root);
  return { cpuSec: ticks / CLK_TCK, pids };
}
