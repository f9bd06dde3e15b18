import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { renderErrorsDoc } from '../../src/cli/docs.js';
import { renderConfigurationDoc, withReadmeTable } from '../../src/config/reference.js';
import { renderAuditDoc, renderMetricsDoc } from '../../src/observability/reference.js';

it('docs/configuration.md, docs/errors.md and the README table match the code (run `npm run docs`)', () => {
  assert.equal(readFileSync('docs/configuration.md', 'utf8'), renderConfigurationDoc());
  assert.equal(readFileSync('docs/errors.md', 'utf8'), renderErrorsDoc());
  const readme = readFileSync('README.md', 'utf8');
  assert.equal(readme, withReadmeTable(readme));
});

it('docs/metrics.md matches the metric table and docs/audit.md the audit events (run `npm run docs`)', () => {
  assert.equal(readFileSync('docs/metrics.md', 'utf8'), renderMetricsDoc());
  assert.equal(readFileSync('docs/audit.md', 'utf8'), renderAuditDoc());
});
