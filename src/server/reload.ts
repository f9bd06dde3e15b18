import { type FSWatcher, statSync, watch } from 'node:fs';
import type { BffConfig, FrontendConfig } from '../config/types.js';
import { ConfigError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import {
  type FrontendRegistry,
  type FrontendRuntime,
  frontendFingerprint,
  restartOnlyChanges,
} from './frontends.js';

export type ReloadOutcome = 'applied' | 'unchanged' | 'invalid' | 'refused' | 'failed';

export interface ReloadResult {
  readonly outcome: ReloadOutcome;
  /** Names of frontends added, changed or removed (applied only). */
  readonly changed: readonly string[];
  /** Why nothing changed (invalid, refused, failed). */
  readonly problems: readonly string[];
}

export interface ReloaderOptions {
  readonly registry: FrontendRegistry;
  /** The loader used at start (environment + MS_BFF_CONFIG); absent: every reload is refused. */
  readonly load: (() => Promise<BffConfig>) | undefined;
  /** The configuration being served. */
  readonly current: BffConfig;
  /** New services for a frontend that is new or changed (IdP discovery included: may throw). */
  readonly build: (frontend: FrontendConfig) => Promise<FrontendRuntime>;
  /** A frontend's old services once its replacement serves (they finish what they started). */
  readonly retire: (runtime: FrontendRuntime) => void;
  readonly log: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  readonly metrics: Metrics;
}

/** A bounded reason per outcome (the problems themselves are in the error log line). */
const REASONS: Readonly<Record<ReloadOutcome, string>> = {
  applied: 'changed',
  unchanged: 'no_change',
  invalid: 'validation',
  refused: 'restart_required',
  failed: 'frontend_unavailable',
};

/** How often the file is stat()ed in case fs.watch misses a change (editors, ConfigMap symlink swaps). */
const POLL_MS = 1_000;
/** Editors write in several steps: the reload waits for the file to settle. */
const DEBOUNCE_MS = 200;

/**
 * Applies a changed configuration without a restart (SIGHUP, or the MS_BFF_CONFIG file changing):
 * the whole configuration is loaded and validated by the same loader as at start, and only then
 * the frontends are swapped in one step. Unchanged frontends keep their services; changed ones get
 * new services over the same store namespace, so sessions and logins in flight carry on. A file
 * that does not validate, or that changes what needs a restart, changes nothing and says why.
 */
export class ConfigReloader {
  private config: BffConfig;
  private running: Promise<ReloadResult> | undefined;
  private again = false;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastStat = '';

  constructor(private readonly opts: ReloaderOptions) {
    this.config = opts.current;
  }

  /** The configuration now served. */
  get current(): BffConfig {
    return this.config;
  }

  /** Reload now; concurrent calls share one run, and a call during a run triggers one more after it. */
  reload(trigger: 'sighup' | 'file' | 'api' = 'api'): Promise<ReloadResult> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.run(trigger).finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.reload(trigger);
      }
    });
    return this.running;
  }

  /** Watch `path` (fs.watch on its directory, plus a stat poll) and reload when it changes. */
  watch(path: string): void {
    if (this.poller) return;
    this.lastStat = statKey(path);
    const changed = () => {
      if (this.debounce) clearTimeout(this.debounce);
      this.debounce = setTimeout(() => {
        this.debounce = undefined;
        const now = statKey(path);
        if (now === this.lastStat) return;
        this.lastStat = now;
        void this.reload('file');
      }, DEBOUNCE_MS);
      this.debounce.unref();
    };
    try {
      // The directory, not the file: an editor or a ConfigMap update replaces the file (new inode).
      this.watcher = watch(dirOf(path), { persistent: false }, () => changed());
      this.watcher.on('error', () => undefined);
    } catch {
      // Polling alone (e.g. a file system without inotify).
    }
    this.poller = setInterval(() => {
      if (statKey(path) !== this.lastStat) changed();
    }, POLL_MS);
    this.poller.unref();
  }

  close(): void {
    this.watcher?.close();
    if (this.poller) clearInterval(this.poller);
    if (this.debounce) clearTimeout(this.debounce);
    this.watcher = undefined;
    this.poller = undefined;
  }

  private async run(trigger: string): Promise<ReloadResult> {
    const result = await this.apply();
    this.opts.metrics.configReload(result.outcome);
    const fields = { trigger, outcome: result.outcome, frontends_changed: result.changed };
    if (result.outcome === 'applied' || result.outcome === 'unchanged') {
      this.opts.log.info(fields, 'configuration reloaded');
    } else {
      this.opts.log.error(
        { ...fields, problems: result.problems },
        'configuration reload refused; the previous configuration stays',
      );
    }
    this.opts.registry.primary.services.audit.emit('config.reloaded', {
      outcome: result.outcome,
      reason: REASONS[result.outcome],
      trigger,
      frontends_changed: result.changed.join(','),
    });
    return result;
  }

  private async apply(): Promise<ReloadResult> {
    const none = { changed: [] as string[] };
    if (!this.opts.load)
      return { ...none, outcome: 'refused', problems: ['reloading is not available here'] };
    let next: BffConfig;
    try {
      next = await this.opts.load();
    } catch (err) {
      if (err instanceof ConfigError) {
        return {
          ...none,
          outcome: 'invalid',
          problems: err.problems.map((p) => `${p.variable}: ${p.message}`),
        };
      }
      return { ...none, outcome: 'failed', problems: [(err as Error).message] };
    }
    const restart = restartOnlyChanges(this.config, next);
    if (restart.length > 0) {
      return {
        ...none,
        outcome: 'refused',
        problems: restart.map((name) => `${name} changed: that needs a restart (not applied by a reload)`),
      };
    }
    const old = new Map(this.opts.registry.list().map((r) => [r.name, r]));
    const runtimes: FrontendRuntime[] = [];
    const changed: string[] = [];
    const built: FrontendRuntime[] = [];
    try {
      for (const frontend of next.frontends) {
        const before = old.get(frontend.name);
        if (before && before.fingerprint === frontendFingerprint(frontend)) {
          runtimes.push(before);
          continue;
        }
        const runtime = await this.opts.build(frontend);
        built.push(runtime);
        runtimes.push(runtime);
        changed.push(frontend.name);
      }
    } catch (err) {
      // Nothing was swapped: the services just built are dropped, the old ones keep serving.
      for (const runtime of built) this.opts.retire(runtime);
      return { ...none, outcome: 'failed', problems: [`cannot build a frontend: ${(err as Error).message}`] };
    }
    const kept = new Set(runtimes);
    const removed = [...old.values()].filter((r) => !kept.has(r));
    for (const r of removed) if (!changed.includes(r.name)) changed.push(r.name);
    this.config = next;
    if (changed.length === 0) return { outcome: 'unchanged', changed, problems: [] };
    this.opts.registry.replace(runtimes);
    for (const r of removed) this.opts.retire(r);
    return { outcome: 'applied', changed, problems: [] };
  }
}

function statKey(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? (i === 0 ? '/' : '.') : path.slice(0, i);
}
