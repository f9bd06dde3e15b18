import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { renderConfigurationDoc, renderErrorsDoc } from '../../src/cli/docs.js';

it('docs/configuration.md and docs/errors.md match the code (run `npm run docs`)', () => {
  assert.equal(readFileSync('docs/configuration.md', 'utf8'), renderConfigurationDoc());
  assert.equal(readFileSync('docs/errors.md', 'utf8'), renderErrorsDoc());
});
