import cluster, { type Worker } from 'node:cluster';
import { servePrimaryMetrics } from '../observability/cluster-metrics.js';

export interface PrimaryLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A worker that dies sooner than this after its start counts towards the crash-loop limit. */
const CRASH_WINDOW_MS = 60_000;
const MAX_CRASHES_IN_WINDOW = 10;
const STOP_TIMEOUT_MS = 15_000;

/**
 * The primary of MS_BFF_WORKERS=N (node:cluster): N workers share the listening port (the primary
 * accepts and hands connections round-robin), each a full BFF with its own memory and a shared
 * Redis store. The primary serves no requests; it
 * - replaces a worker that exits unexpectedly (with a crash-loop limit, then gives up loudly);
 * - on SIGHUP restarts workers one at a time: the new one is listening before the old one is told
 *   to drain (SIGTERM: it stops accepting, finishes requests in flight, closes the store);
 * - on SIGTERM/SIGINT asks every worker to drain and exits when they have (bounded);
 * - answers /metrics requests from workers with the aggregate of all workers.
 */
export async function runPrimary(options: { workers: number; log: PrimaryLogger }): Promise<void> {
  const { log } = options;
  let stopping = false;
  const crashes: number[] = [];
  const retiring = new Set<Worker>();
  servePrimaryMetrics();

  const fork = (): Promise<Worker> =>
    new Promise((resolve, reject) => {
      const worker = cluster.fork();
      const onExit = (code: number | null) =>
        reject(new Error(`worker exited with ${code} before listening`));
      worker.once('exit', onExit);
      worker.once('listening', () => {
        worker.off('exit', onExit);
        resolve(worker);
      });
    });

  cluster.on('exit', (worker, code, signal) => {
    if (stopping || retiring.has(worker)) {
      retiring.delete(worker);
      return;
    }
    const now = Date.now();
    crashes.push(now);
    while (crashes.length > 0 && (crashes[0] as number) < now - CRASH_WINDOW_MS) crashes.shift();
    if (crashes.length > MAX_CRASHES_IN_WINDOW) {
      log.error({ crashes: crashes.length, windowMs: CRASH_WINDOW_MS }, 'workers keep crashing; giving up');
      void stopAll(1);
      return;
    }
    log.warn({ pid: worker.process.pid, code, signal }, 'worker exited unexpectedly; starting a replacement');
    setTimeout(() => {
      if (!stopping) fork().catch((err: unknown) => log.error({ err }, 'replacement worker failed to start'));
    }, 200 * crashes.length);
  });

  const stopWorker = (worker: Worker): Promise<void> =>
    new Promise((resolve) => {
      if (worker.isDead()) return resolve();
      const timer = setTimeout(() => worker.process.kill('SIGKILL'), STOP_TIMEOUT_MS);
      worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      worker.process.kill('SIGTERM');
    });

  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log.info({ workers: Object.keys(cluster.workers ?? {}).length }, 'stopping workers');
    await Promise.all(Object.values(cluster.workers ?? {}).map((w) => (w ? stopWorker(w) : undefined)));
    process.exit(code);
  };

  let restarting = false;
  const rollingRestart = async () => {
    if (restarting || stopping) return;
    restarting = true;
    try {
      for (const old of Object.values(cluster.workers ?? {})) {
        if (!old || stopping) continue;
        await fork();
        retiring.add(old);
        await stopWorker(old);
      }
      log.info({ workers: options.workers }, 'rolling restart done');
    } catch (err) {
      log.error({ err }, 'rolling restart failed');
    } finally {
      restarting = false;
    }
  };

  process.on('SIGTERM', () => void stopAll(0));
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGHUP', () => void rollingRestart());

  await Promise.all(Array.from({ length: options.workers }, () => fork()));
  log.info({ workers: options.workers, pid: process.pid }, 'fapi-bff primary: workers listening');
}
