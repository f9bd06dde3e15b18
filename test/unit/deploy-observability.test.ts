/**
 * The alerting rules (deploy/prometheus) and the Grafana dashboard (deploy/grafana) against the
 * code: every metric they name is one the registry serves (a rename breaks the build), every alert
 * is tested by promtool both firing and quiet, every runbook_url names an existing runbook
 * section, and the dashboard's queries go through a templated Prometheus datasource. promtool
 * itself (`check rules`, `test rules`) runs in .ci/run.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { ERROR_CODES } from '../../src/errors.js';
import { exposedNames, type MetricDeclaration, METRICS } from '../../src/observability/metric-catalog.js';
import { Metrics } from '../../src/observability/metrics.js';

const RULES = 'deploy/prometheus/fapi-bff.rules.yml';
const RULE_TESTS = 'deploy/prometheus/fapi-bff.rules.test.yml';
const DASHBOARD = 'deploy/grafana/fapi-bff.json';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = (): Rule[] =>
  (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

// PromQL words that are not metric names: functions, aggregations, operators, modifiers
// (https://prometheus.io/docs/prometheus/latest/querying/functions/, …/operators/).
const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'group',
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'changes', 'resets', 'histogram_quantile',
  'clamp_min', 'clamp_max', 'clamp', 'abs', 'absent', 'absent_over_time', 'vector', 'scalar', 'time',
  'max_over_time', 'min_over_time', 'avg_over_time', 'sum_over_time', 'count_over_time',
  'last_over_time', 'label_replace', 'label_join', 'sort', 'sort_desc', 'round', 'ceil', 'floor',
  'label_values', 'and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring',
  'group_left', 'group_right', 'inf', 'nan',
]); // prettier-ignore

/** The metric names a PromQL expression (or a Grafana query with $variables) reads. */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/label_values\(([^,()]*),\s*\w+\)/g, ' $1 ') // Grafana's label_values(metric, label)
    .replace(/\$\{?\w+\}?/g, ' ') // Grafana variables ($job, $__rate_interval, ${datasource})
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ') // string literals (label values)
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // range selectors
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\boffset\s+\w+/g, ' ')
    .replace(/\b\d[\w.]*/g, ' '); // numbers and durations (1e-9, 5m)
  const names = stripped.match(/[A-Za-z_:][A-Za-z0-9_:]*/g) ?? [];
  return [...new Set(names.filter((n) => !PROMQL_WORDS.has(n.toLowerCase())))];
}

/** Every name a scrape of our registry can show, plus Prometheus's own series. */
function knownNames(): Set<string> {
  const declared: readonly MetricDeclaration[] = Object.values(METRICS);
  const known = new Set(declared.flatMap((m) => exposedNames(m)));
  for (const rule of rules()) if (rule.record) known.add(rule.record);
  // Made by Prometheus itself, not the BFF: alert state series.
  known.add('ALERTS');
  return known;
}

describe('metrics: one table, one registry', () => {
  it('the registry serves exactly the declared metrics, with their type, labels and help', async () => {
    const served = await new Metrics({ defaultMetrics: false }).registry.getMetricsAsJSON();
    const declared: readonly MetricDeclaration[] = Object.values(METRICS);
    assert.deepEqual(served.map((m) => m.name).sort(), declared.map((m) => m.name).sort());
    for (const d of declared) {
      const m = served.find((s) => s.name === d.name);
      assert.equal(m?.type, d.type, d.name);
      assert.equal(m?.help, d.help, d.name);
    }
  });

  it('metricNamesIn reads metric names, not functions, labels, variables or durations', () => {
    assert.deepEqual(
      metricNamesIn(
        'histogram_quantile(0.95, sum by (le, route) (rate(bff_proxy_duration_seconds_bucket{job=~"$job",code="x y"}[$__rate_interval]))) / on (job) x:y offset 1d > 1e-9',
      ),
      ['bff_proxy_duration_seconds_bucket', 'x:y'],
    );
  });
});

describe('seed-named metrics', () => {
  /** Test sources outside test/unit that read a running BFF's metrics (`/metrics` or the registry's render). */
  function readBackTests(): { path: string; text: string }[] {
    const out: { path: string; text: string }[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.test.ts')) out.push({ path, text: readFileSync(path, 'utf8') });
      }
    };
    for (const dir of ['test/e2e', 'test/idp-misbehaviour', 'test/interop']) walk(dir);
    return out.filter((f) => /\/metrics|\.render\(\)/.test(f.text));
  }

  it('each is read back by a test that drives a running BFF and reads its metrics', () => {
    const tests = readBackTests();
    const declared: readonly MetricDeclaration[] = Object.values(METRICS);
    const seeded = declared.filter((m) => m.seed !== undefined);
    assert.ok(seeded.length >= 12);
    for (const m of seeded)
      assert.ok(
        tests.some((t) => t.text.includes(m.name)),
        `${m.name} (seed ${m.seed}) is not read back by any test under test/e2e, test/idp-misbehaviour or test/interop`,
      );
  });
});

describe('alerting rules (deploy/prometheus)', () => {
  it('name only metrics the registry serves (a renamed metric fails here)', () => {
    const known = knownNames();
    for (const rule of rules()) {
      const names = metricNamesIn(rule.expr);
      assert.ok(names.length > 0, `${rule.alert ?? rule.record}: no metric found in its expression`);
      for (const name of names)
        assert.ok(known.has(name), `${rule.alert ?? rule.record} uses ${name}, which no metric provides`);
    }
  });

  it('every alert has a severity, a summary and a runbook_url naming an existing runbook section', () => {
    const alerts = rules().filter((r) => r.alert);
    assert.ok(alerts.length >= 10);
    for (const rule of alerts) {
      assert.match(rule.labels?.severity ?? '', /^(critical|warning)$/, `${rule.alert}: severity`);
      assert.ok(rule.annotations?.summary, `${rule.alert}: summary`);
      const url = rule.annotations?.runbook_url ?? '';
      const [file = '', anchor] = url.split('#');
      assert.match(file, /^docs\/runbooks\/[a-z0-9-]+\.md$/, `${rule.alert}: runbook_url ${url}`);
      assert.ok(existsSync(file), `${rule.alert}: ${file} does not exist`);
      if (anchor !== undefined) {
        const slugs = readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('#'))
          .map((l) => githubSlug(l.replace(/^#+\s*/, '')));
        assert.ok(slugs.includes(anchor), `${rule.alert}: ${file} has no heading #${anchor}`);
      }
    }
  });

  it('every runbook has symptoms, diagnosis, actions and verification, and the index lists it', () => {
    const index = readFileSync('docs/runbooks/README.md', 'utf8');
    const books = readdirSync('docs/runbooks').filter((f) => f.endsWith('.md') && f !== 'README.md');
    assert.ok(books.length >= 9);
    for (const book of books) {
      const headings = readFileSync(join('docs/runbooks', book), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('## '))
        .map((l) => l.slice(3));
      for (const part of ['Symptoms', 'Diagnosis', 'Actions', 'Verification'])
        assert.ok(
          headings.some((h) => h.startsWith(part)),
          `${book}: no "## ${part}" section`,
        );
      assert.ok(index.includes(`](${book})`), `docs/runbooks/README.md does not list ${book}`);
    }
  });

  it('pass promtool check rules and test rules (when promtool is installed; .ci/run installs it)', (t) => {
    const version = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
    if (version.error) {
      t.skip('promtool is not installed');
      return;
    }
    const check = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const test = spawnSync('promtool', ['test', 'rules', 'fapi-bff.rules.test.yml'], {
      cwd: 'deploy/prometheus',
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(test.status, 0, test.stdout + test.stderr);
  });

  it('every alert is tested by promtool both firing and quiet', () => {
    const tests = (
      parse(readFileSync(RULE_TESTS, 'utf8')) as {
        tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
      }
    ).tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const rule of rules().filter((r) => r.alert)) {
      const mine = tests.filter((t) => t.alertname === rule.alert);
      assert.ok(
        mine.some((t) => t.exp_alerts.length > 0),
        `${rule.alert}: no test where it fires`,
      );
      assert.ok(
        mine.some((t) => t.exp_alerts.length === 0),
        `${rule.alert}: no test where it stays quiet`,
      );
    }
  });

  it('FapiBffServerErrors counts exactly the error codes of status 5xx (src/errors.ts) but deliberate ones', () => {
    // A route switched off by the operator (kill switch) answers 503 on purpose: not a failure to page on.
    const deliberate = new Set(['BFF_ROUTE_DISABLED']);
    const rule = rules().find((r) => r.alert === 'FapiBffServerErrors');
    const codes = /code=~"([^"]+)"/.exec(rule?.expr ?? '')?.[1]?.split('|') ?? [];
    const fivexx = Object.entries(ERROR_CODES)
      .filter(([code, e]) => e.status >= 500 && !deliberate.has(code))
      .map(([code]) => code);
    assert.deepEqual(codes.sort(), fivexx.sort(), 'update the code list in ' + RULES);
  });
});

describe('Grafana dashboard (deploy/grafana)', () => {
  interface Target {
    expr: string;
    datasource?: { type?: string; uid?: string };
  }
  interface Panel {
    type: string;
    title: string;
    datasource?: { type?: string; uid?: string };
    targets?: Target[];
  }
  const dashboard = () =>
    JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      uid: string;
      panels: Panel[];
      templating: {
        list: { name: string; type: string; query: unknown; datasource?: { type?: string; uid?: string } }[];
      };
    };

  it('is valid JSON with a templated Prometheus datasource used by every panel and query', () => {
    const d = dashboard();
    assert.ok(d.uid);
    const ds = d.templating.list.find((v) => v.type === 'datasource');
    assert.equal(ds?.query, 'prometheus');
    assert.ok(ds);
    const ref = `\${${ds.name}}`;
    for (const v of d.templating.list.filter((v) => v.type === 'query'))
      assert.deepEqual(v.datasource, { type: 'prometheus', uid: ref }, `variable ${v.name}`);
    const panels = d.panels.filter((p) => p.type !== 'row');
    assert.ok(panels.length >= 10);
    for (const p of panels) {
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: ref }, p.title);
      assert.ok((p.targets ?? []).length > 0, `${p.title}: no query`);
      for (const t of p.targets ?? [])
        assert.deepEqual(t.datasource, { type: 'prometheus', uid: ref }, p.title);
    }
  });

  it('queries only metrics the registry serves (a renamed metric fails here)', () => {
    const known = knownNames();
    const d = dashboard();
    const exprs = d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
    for (const v of d.templating.list)
      if (v.type === 'query')
        exprs.push({
          title: `variable ${v.name}`,
          expr: typeof v.query === 'string' ? v.query : String((v.query as { query?: unknown }).query),
        });
    for (const { title, expr } of exprs) {
      const names = metricNamesIn(expr);
      assert.ok(names.length > 0, `${title}: no metric in ${expr}`);
      for (const name of names) assert.ok(known.has(name), `${title} uses ${name}, which no metric provides`);
    }
  });

  it('shows what the operator needs: logins, callbacks, refresh, proxy, store, JWKS, JARM, 429s, FIPS', () => {
    const used = new Set(
      dashboard().panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNamesIn(t.expr))),
    );
    for (const name of [
      'bff_login_started_total',
      'bff_callbacks_total',
      'bff_token_refresh_total',
      'bff_proxy_requests_total',
      'bff_proxy_duration_seconds_bucket',
      'bff_store_up',
      'jwks_cache_age_seconds',
      'jarm_validation_failures_total',
      'bff_rate_limited_total',
      'bff_fips_mode',
      'bff_fips_required',
    ])
      assert.ok(used.has(name), `no panel shows ${name}`);
  });
});

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
function githubSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}
