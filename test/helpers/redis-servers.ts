/**
 * Real Redis topologies for tests, made of `redis-server` / `redis-sentinel` processes on free
 * loopback ports in a temporary directory: a standalone server (optionally TLS with client
 * certificates), Sentinel (one master, one replica, three sentinels) and Cluster (three masters,
 * three replicas). Tests may kill, pause and restart these processes; never the shared Redis.
 *
 * Every wait is bounded; `close()` kills every process this helper started and removes the directory.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Redis, type RedisOptions } from 'ioredis';
import { freePort } from './bff-harness.js';
import type { TestPki } from './pki.js';

const run = promisify(execFile);

export const haveRedisServer =
  spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error === undefined;
export const haveRedisSentinel =
  spawnSync('redis-sentinel', ['--version'], { stdio: 'ignore' }).error === undefined;

const BASE_ARGS = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];

export interface RedisProcess {
  readonly port: number;
  readonly child: ChildProcess;
  readonly alive: boolean;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts processes and remembers them so one `close()` ends them all. */
export class RedisFleet {
  readonly dir = mkdtempSync(join(tmpdir(), 'fapi-bff-redis-'));
  readonly #processes = new Set<ChildProcess>();

  async spawn(
    command: 'redis-server' | 'redis-sentinel',
    args: string[],
    port: number,
    ping?: RedisOptions,
  ): Promise<RedisProcess> {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.dir });
    this.#processes.add(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    });
    child.once('exit', () => this.#processes.delete(child));
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`${command} exited with ${child.exitCode}: ${output}`);
        const client = new Redis({
          port,
          host: '127.0.0.1',
          lazyConnect: true,
          retryStrategy: () => null,
          maxRetriesPerRequest: 0,
          connectTimeout: 500,
          ...ping,
        });
        client.on('error', () => {});
        try {
          await client.connect();
          await client.ping();
        } finally {
          client.disconnect();
        }
      },
      10_000,
      () => `${command} on ${port} did not answer: ${output}`,
    );
    return {
      port,
      child,
      get alive() {
        return child.exitCode === null && child.signalCode === null;
      },
      kill: async (signal: NodeJS.Signals = 'SIGKILL') => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGCONT');
        child.kill(signal);
        await exited;
      },
    };
  }

  /** SIGKILL to every process, synchronously (for a `process.on('exit')` handler). */
  killNow(): void {
    for (const child of this.#processes) child.kill('SIGKILL');
  }

  async close(): Promise<void> {
    for (const child of [...this.#processes]) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = once(child, 'exit');
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Poll `check` until it resolves; bounded in time and in attempts. */
export async function waitFor(
  check: () => Promise<void>,
  timeoutMs: number,
  message?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 10_000; attempt++) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(message ? message() : `timed out after ${timeoutMs} ms: ${(err as Error).message}`, {
          cause: err,
        });
      }
      await sleep(100);
    }
  }
  throw new Error('waitFor: too many attempts');
}

/** A short-lived admin connection (commands a test needs: INFO, ROLE, CLUSTER INFO, …). */
export async function withAdmin<T>(
  port: number,
  fn: (redis: Redis) => Promise<T>,
  options: RedisOptions = {},
): Promise<T> {
  const redis = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    commandTimeout: 3000,
    ...options,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

// --- Standalone -------------------------------------------------------------------------------

export interface Standalone {
  fleet: RedisFleet;
  server: RedisProcess;
  url: string;
  close(): Promise<void>;
}

export async function startStandalone(args: string[] = []): Promise<Standalone> {
  const fleet = new RedisFleet();
  const port = await freePort();
  const server = await fleet.spawn('redis-server', ['--port', String(port), ...BASE_ARGS, ...args], port);
  return { fleet, server, url: `redis://127.0.0.1:${port}`, close: () => fleet.close() };
}

// --- One private server that a test pauses, kills and restarts ------------------------------

/** Why Redis-process tests are skipped, or false when redis-server is installed. */
export const REDIS_SERVER_MISSING: string | false = haveRedisServer ? false : 'redis-server is not on PATH';

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
  /** Kill it and remove its directory. */
  close(): Promise<void>;
}

const privateFleets = new Set<RedisFleet>();
process.once('exit', () => {
  for (const fleet of privateFleets) fleet.killNow();
});

/**
 * A standalone redis-server on `port` (default: a free one) for a test that kills, pauses or
 * restarts Redis; persists nothing, and is killed when the test process exits at the latest.
 */
export async function startRedisServer(
  opts: { port?: number; args?: readonly string[] } = {},
): Promise<PrivateRedis> {
  const port = opts.port ?? (await freePort());
  const fleet = new RedisFleet();
  privateFleets.add(fleet);
  const launch = () =>
    fleet.spawn('redis-server', ['--port', String(port), ...BASE_ARGS, ...(opts.args ?? [])], port);
  let server = await launch().catch(async (err: unknown) => {
    privateFleets.delete(fleet);
    await fleet.close();
    throw err;
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get child() {
      return server.child;
    },
    pause: () => server.child.kill('SIGSTOP'),
    resume: () => server.child.kill('SIGCONT'),
    kill: () => server.kill(),
    async restart() {
      await server.kill();
      server = await launch();
    },
    async close() {
      privateFleets.delete(fleet);
      await fleet.close();
    },
  };
}

// --- TLS (client certificates required) -------------------------------------------------------

export interface TlsRedis {
  fleet: RedisFleet;
  server: RedisProcess;
  /** `rediss://127.0.0.1:<tls port>` */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** TLS only (`--port 0`), `--tls-auth-clients yes`: a client without a certificate from the CA is refused. */
export async function startTlsRedis(pki: TestPki, extraArgs: string[] = []): Promise<TlsRedis> {
  const fleet = new RedisFleet();
  const files = {
    ca: join(fleet.dir, 'ca.pem'),
    cert: join(fleet.dir, 'server.pem'),
    key: join(fleet.dir, 'server-key.pem'),
  };
  writeFileSync(files.ca, pki.caCert);
  writeFileSync(files.cert, pki.serverCert);
  writeFileSync(files.key, pki.serverKey, { mode: 0o600 });
  const port = await freePort();
  const server = await fleet.spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--tls-cert-file',
      files.cert,
      '--tls-key-file',
      files.key,
      '--tls-ca-cert-file',
      files.ca,
      '--tls-auth-clients',
      'yes',
      ...BASE_ARGS,
      ...extraArgs,
    ],
    port,
    { tls: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey, servername: 'localhost' } },
  );
  return { fleet, server, port, url: `rediss://127.0.0.1:${port}`, close: () => fleet.close() };
}

// --- Sentinel: 1 master, 1 replica, 3 sentinels -----------------------------------------------

export interface SentinelTopology {
  fleet: RedisFleet;
  masterName: string;
  master: RedisProcess;
  replica: RedisProcess;
  sentinels: RedisProcess[];
  endpoints: { host: string; port: number }[];
  /** Port of the server the sentinels currently name as master. */
  currentMasterPort(): Promise<number>;
  /** What each live sentinel says about the master (for a failing test's message). */
  describe(): Promise<string>;
  close(): Promise<void>;
}

export async function startSentinel(opts: { downAfterMs?: number } = {}): Promise<SentinelTopology> {
  const fleet = new RedisFleet();
  const masterName = 'bffmaster';
  const downAfter = opts.downAfterMs ?? 1000;
  try {
    const masterPort = await freePort();
    const master = await fleet.spawn(
      'redis-server',
      ['--port', String(masterPort), ...BASE_ARGS],
      masterPort,
    );
    const replicaPort = await freePort();
    const replica = await fleet.spawn(
      'redis-server',
      ['--port', String(replicaPort), ...BASE_ARGS, '--replicaof', '127.0.0.1', String(masterPort)],
      replicaPort,
    );
    await waitFor(
      () =>
        withAdmin(replicaPort, async (r) => {
          const info = await r.info('replication');
          if (!/master_link_status:up/.test(info)) throw new Error('replica not in sync');
        }),
      10_000,
    );
    const sentinels: RedisProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(fleet.dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          'protected-mode no',
          `dir ${fleet.dir}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${masterName} ${downAfter}`,
          // A sentinel that lost the leader election (a split vote under load) tries again after
          // twice this: 6 s rather than the 6 min default, so a test sees a failover within its bound.
          // https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/#sentinel-configuration
          `sentinel failover-timeout ${masterName} 3000`,
          `sentinel parallel-syncs ${masterName} 1`,
          '',
        ].join('\n'),
      );
      sentinels.push(await fleet.spawn('redis-sentinel', [conf], port));
    }
    // Sentinels find the replica through the master and each other through hello messages (every 2 s).
    await waitFor(async () => {
      for (const s of sentinels) {
        await withAdmin(s.port, async (r) => {
          const replicas = (await r.call('SENTINEL', 'REPLICAS', masterName)) as unknown[];
          const peers = (await r.call('SENTINEL', 'SENTINELS', masterName)) as unknown[];
          if (replicas.length < 1 || peers.length < 2) throw new Error('sentinels not acquainted yet');
        });
      }
    }, 20_000);
    const endpoints = sentinels.map((s) => ({ host: '127.0.0.1', port: s.port }));
    return {
      fleet,
      masterName,
      master,
      replica,
      sentinels,
      endpoints,
      currentMasterPort: async () => {
        for (const s of sentinels) {
          if (!s.alive) continue;
          const addr = await withAdmin(s.port, (r) =>
            r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName),
          ).catch(() => undefined);
          if (Array.isArray(addr)) return Number(addr[1]);
        }
        throw new Error('no sentinel answered');
      },
      describe: async () => {
        const lines: string[] = [];
        for (const s of sentinels) {
          if (!s.alive) continue;
          lines.push(
            await withAdmin(s.port, async (r) => {
              const master = (await r.call('SENTINEL', 'MASTER', masterName)) as string[];
              const fields = new Map<string, string>();
              for (let i = 0; i + 1 < master.length; i += 2)
                fields.set(String(master[i]), String(master[i + 1]));
              const tilt = /sentinel_tilt:(\d)/.exec(await r.info('sentinel'))?.[1];
              return `sentinel ${s.port}: master ${fields.get('port')} flags=${fields.get('flags')} failover-state=${fields.get('failover-state') ?? '-'} tilt=${tilt}`;
            }).catch((err: unknown) => `sentinel ${s.port}: ${String(err)}`),
          );
        }
        for (const server of [master, replica]) {
          lines.push(
            server.alive
              ? await withAdmin(
                  server.port,
                  async (r) =>
                    `server ${server.port}: role ${String(((await r.call('ROLE')) as unknown[])[0])}`,
                ).catch((err: unknown) => `server ${server.port}: ${String(err)}`)
              : `server ${server.port}: killed`,
          );
        }
        return lines.join('; ');
      },
      close: () => fleet.close(),
    };
  } catch (err) {
    await fleet.close();
    throw err;
  }
}

// --- Cluster: 3 masters, 3 replicas ------------------------------------------------------------

export interface ClusterTopology {
  fleet: RedisFleet;
  nodes: RedisProcess[];
  endpoints: { host: string; port: number }[];
  /** Ports of the nodes that are masters now (asked of a live node). */
  masterPorts(): Promise<number[]>;
  close(): Promise<void>;
}

export async function startCluster(opts: { nodeTimeoutMs?: number } = {}): Promise<ClusterTopology> {
  const fleet = new RedisFleet();
  try {
    const nodes: RedisProcess[] = [];
    for (let i = 0; i < 6; i++) {
      const port = await freePort();
      // cluster-port: the bus port would otherwise be port + 10000, which nobody checked is free.
      const busPort = await freePort();
      nodes.push(
        await fleet.spawn(
          'redis-server',
          [
            '--port',
            String(port),
            ...BASE_ARGS,
            '--cluster-enabled',
            'yes',
            '--cluster-port',
            String(busPort),
            '--cluster-config-file',
            join(fleet.dir, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            String(opts.nodeTimeoutMs ?? 1000),
          ],
          port,
        ),
      );
    }
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
    await waitFor(async () => {
      for (const n of nodes) {
        await withAdmin(n.port, async (r) => {
          const info = (await r.call('CLUSTER', 'INFO')) as string;
          if (!/cluster_state:ok/.test(info) || !/cluster_known_nodes:6/.test(info))
            throw new Error('cluster not ok');
          const role = (await r.call('ROLE')) as unknown[];
          if (role[0] === 'slave' && role[3] !== 'connected') throw new Error('replica not connected');
        });
      }
    }, 30_000);
    const endpoints = nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
    return {
      fleet,
      nodes,
      endpoints,
      masterPorts: async () => {
        for (const n of nodes) {
          if (!n.alive) continue;
          const lines = await withAdmin(n.port, (r) => r.call('CLUSTER', 'NODES') as Promise<string>).catch(
            () => undefined,
          );
          if (lines === undefined) continue;
          return lines
            .split('\n')
            .filter(
              (l) =>
                / master /.test(` ${l.split(' ')[2]?.replace(/,/g, ' ')} `) &&
                !/fail/.test(l.split(' ')[2] ?? ''),
            )
            .map((l) => Number(/:(\d+)@/.exec(l)?.[1]));
        }
        throw new Error('no cluster node answered');
      },
      close: () => fleet.close(),
    };
  } catch (err) {
    await fleet.close();
    throw err;
  }
}
