import { getFips } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { runSelfTest, type SelfTestCheck } from './self-test.js';
import { nodeTls as tls } from './tls.js';

/** What /readyz, the startup log line and the admin readiness report say about FIPS. */
export interface FipsEvidence {
  readonly fips_mode: boolean;
  readonly openssl_version: string;
  /** The OpenSSL config Node was started with (`--openssl-config` or OPENSSL_CONF), if any. */
  readonly openssl_config: string | undefined;
  /** Providers that config activates, by name (Node has no API listing loaded providers). */
  readonly providers: readonly string[];
  readonly openssl_modules: string | undefined;
  readonly self_test: {
    readonly ran: boolean;
    readonly passed: boolean;
    readonly checks: readonly SelfTestCheck[];
  };
  readonly tls: { readonly min_version: string; readonly ciphers: string; readonly ecdh_curve: string };
}

function opensslConfigPath(): string | undefined {
  const argv = [...process.execArgv, ...(process.env.NODE_OPTIONS?.split(/\s+/) ?? [])];
  for (const [i, a] of argv.entries()) {
    if (a.startsWith('--openssl-config=')) return a.slice('--openssl-config='.length);
    if (a === '--openssl-config') return argv[i + 1];
  }
  return process.env.OPENSSL_CONF;
}

/**
 * Names of the providers activated by an OpenSSL config: the keys of the section its
 * `providers = …` line names, keeping those whose own section says `activate = 1`.
 * https://docs.openssl.org/3.0/man5/config/#provider-configuration-module
 */
export function configuredProviders(text: string): string[] {
  const sections = new Map<string, Map<string, string>>();
  let current = sections.set('', new Map()).get('') as Map<string, string>;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const header = /^\[\s*([^\]\s]+)\s*\]$/.exec(line);
    if (header?.[1]) {
      current = new Map();
      sections.set(header[1], current);
      continue;
    }
    const kv = /^([^=\s]+)\s*=\s*(.*)$/.exec(line);
    if (kv?.[1] && kv[2] !== undefined) current.set(kv[1], kv[2]);
  }
  const names: string[] = [];
  for (const section of sections.values()) {
    const providerSect = section.get('providers');
    if (!providerSect) continue;
    for (const [name, sect] of sections.get(providerSect) ?? []) {
      if (/^(1|yes|true|on)$/i.test(sections.get(sect)?.get('activate') ?? '')) names.push(name);
    }
  }
  return names;
}

/**
 * Collect the evidence (and, in FIPS mode, run the self-test). The provider list comes from the
 * config file's text; an unreadable or included-elsewhere section yields an empty list, never a
 * guess. The fips provider's own section lives in the included fipsmodule.cnf, so the activation
 * of `fips` is also accepted from that file.
 */
export function collectFipsEvidence(fipsMode: boolean): FipsEvidence {
  const configPath = opensslConfigPath();
  let providers: string[] = [];
  if (configPath) {
    try {
      const text = readFileSync(configPath, 'utf8');
      const included = [...text.matchAll(/^\s*\.include\s+(\S+)/gm)]
        .map((m) => {
          try {
            return readFileSync(m[1] ?? '', 'utf8');
          } catch {
            return '';
          }
        })
        .join('\n');
      providers = configuredProviders(`${included}\n${text}`);
    } catch {
      providers = [];
    }
  }
  const test = fipsMode ? runSelfTest() : undefined;
  return Object.freeze({
    fips_mode: getFips() === 1,
    openssl_version: process.versions.openssl ?? 'unknown',
    openssl_config: configPath,
    providers,
    openssl_modules: process.env.OPENSSL_MODULES,
    self_test: { ran: test !== undefined, passed: test?.passed ?? false, checks: test?.checks ?? [] },
    tls: {
      min_version: tls.DEFAULT_MIN_VERSION,
      ciphers: tls.DEFAULT_CIPHERS,
      ecdh_curve: tls.DEFAULT_ECDH_CURVE,
    },
  });
}

/** The startup refusal message when FIPS_MODE=true and the evidence does not hold, or undefined. */
export function fipsRefusal(e: FipsEvidence): string | undefined {
  if (e.fips_mode && e.self_test.passed) return undefined;
  const failed = e.self_test.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
  return [
    'FIPS_MODE=true but the FIPS self-test failed; refusing to start.',
    e.fips_mode
      ? `  crypto.getFips() = 1, but: ${failed.join('; ')}`
      : `  crypto.getFips() = 0: Node.js ${process.version} (OpenSSL ${e.openssl_version}) is not running with a FIPS provider.`,
    '  Start node with --openssl-config=<a config that includes fipsmodule.cnf, activates the fips and base',
    '  providers and sets default_properties = fips=yes> and OPENSSL_MODULES=<the directory of fips.so>.',
    '  scripts/fips-provider.sh builds a (non-validated) provider for testing; README "FIPS mode" explains.',
  ].join('\n');
}
