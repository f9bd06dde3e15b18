import type { FastifyInstance } from 'fastify';
/**
 * Process lifecycle: graceful shutdown on SIGTERM/SIGINT and fatal unhandled promise rejections.
 *
 * Shutdown: stop accepting connections, let every request in flight finish (Fastify's close waits for
 * them and closes idle keep-alive connections), then close the store and exit 0. Only if draining
 * takes longer than `drainTimeoutMs` does the process exit 1.
 *
 * An unhandled rejection means a promise failed where no code expected it: the process is in a state
 * nobody reasoned about (a lock never released, a half-written session). It is logged, the process
 * drains like on SIGTERM (requests in flight still complete) and exits 1, so the orchestrator
 * restarts it (Node's own default, --unhandled-rejections=throw, would exit without draining).
 */
export interface Drainable {
  close(): Promise<unknown>;
}

export interface LifecycleLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface LifecycleOptions {
  readonly log: LifecycleLogger;
  /** Closed in order: the HTTP server first (drains requests), then the store, then the rest. */
  readonly closeables: readonly Drainable[];
  readonly drainTimeoutMs: number;
  /** Default process.exit. */
  readonly exit?: (code: number) => void;
}

export interface Lifecycle {
  /** Drain and exit with `code`; later calls only raise the exit code (a failure wins). */
  shutdown(reason: string, code: number): Promise<void>;
}

export function installLifecycle(options: LifecycleOptions): Lifecycle {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let exitCode: number | undefined;
  let draining: Promise<void> | undefined;

  const shutdown = (reason: string, code: number): Promise<void> => {
    exitCode = Math.max(exitCode ?? 0, code);
    if (draining) return draining;
    options.log.info({ reason }, 'shutting down: draining requests in flight');
    const force = setTimeout(() => {
      options.log.error({ reason, timeout_ms: options.drainTimeoutMs }, 'drain timed out; exiting');
      exit(1);
    }, options.drainTimeoutMs);
    force.unref();
    draining = (async () => {
      for (const c of options.closeables) {
        await c.close().catch((err: unknown) => options.log.error({ err }, 'error while closing'));
      }
      clearTimeout(force);
      exit(exitCode ?? 0);
    })();
    return draining;
  };

  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('unhandledRejection', (reason) => {
    options.log.error({ err: reason }, 'unhandled promise rejection: draining and exiting with status 1');
    void shutdown('unhandledRejection', 1);
  });
  return { shutdown };
}

/**
 * Fastify's close stops accepting connections and closes the keep-alive connections idle at that
 * moment; a connection whose request is still in flight would then stay open for the keep-alive
 * timeout (72 s by default) and hold close() up. While closing, every response says
 * `Connection: close` (RFC 9112 §9.6, https://www.rfc-editor.org/rfc/rfc9112#section-9.6) and idle
 * connections are closed as they appear, so close() ends when the last request in flight ends.
 */
export function drainConnectionsOnClose(app: FastifyInstance): void {
  let closing = false;
  let sweeper: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    closing = true;
    sweeper = setInterval(() => app.server.closeIdleConnections(), 100);
    sweeper.unref();
  });
  app.addHook('onSend', (_request, reply, _payload, done) => {
    if (closing) reply.header('connection', 'close');
    done();
  });
  app.addHook('onClose', async () => {
    if (sweeper) clearInterval(sweeper);
  });
}
