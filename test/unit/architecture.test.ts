import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { importCycles, importGraph } from '../helpers/import-graph.js';

/**
 * The module boundaries of eslint.config.js, exercised on fixtures: each forbidden import must be
 * refused by the project's own lint configuration. (Type-aware rules are switched off for the
 * fixtures, which exist only as text.)
 */
const eslint = new ESLint({
  cwd: process.cwd(),
  overrideConfig: [
    {
      files: ['**/*.ts'],
      ...tseslint.configs.disableTypeChecked,
      languageOptions: { parserOptions: { projectService: false, project: null } },
    },
  ],
});

async function boundaryErrors(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports')
    .map((m) => m.message);
}

describe('module boundaries', () => {
  it('refuses Fastify, sessions, the proxy and the endpoints in oauth/', async () => {
    for (const line of [
      "import Fastify from 'fastify';",
      "import type { FastifyRequest } from 'fastify';",
      "import { currentSession } from '../session/current.js';",
      "import { Forwarder } from '../proxy/forward.js';",
      "import { registerLogin } from '../endpoints/login.js';",
    ]) {
      const errors = await boundaryErrors('src/oauth/boundary-fixture.ts', `${line}\nexport {};\n`);
      assert.equal(errors.length, 1, `${line} is refused in src/oauth`);
    }
  });

  it('keeps proxy/ and endpoints/ apart and observability/ free of domain code', async () => {
    assert.equal(
      (await boundaryErrors('src/proxy/forward.ts', "import { x } from '../endpoints/login.js';\n")).length,
      1,
    );
    assert.equal(
      (await boundaryErrors('src/endpoints/login.ts', "import { x } from '../proxy/forward.js';\n")).length,
      1,
    );
    assert.equal(
      (await boundaryErrors('src/observability/metrics.ts', "import type { X } from '../config/types.js';\n"))
        .length,
      1,
    );
  });

  it('keeps spa/ free of sessions, tokens and the IdP, with Fastify only in its plugin.ts', async () => {
    for (const line of [
      "import Fastify from 'fastify';",
      "import fastifyStatic from '@fastify/static';",
      "import { currentSession } from '../session/current.js';",
      "import { Forwarder } from '../proxy/forward.js';",
      "import { IdpClient } from '../oauth/idp-client.js';",
      "import { buildApp } from '../server/app.js';",
    ]) {
      const errors = await boundaryErrors('src/spa/serve.ts', `${line}\nexport {};\n`);
      assert.equal(errors.length, 1, `${line} is refused in src/spa`);
    }
    assert.equal(
      (await boundaryErrors('src/spa/plugin.ts', "import { currentSession } from '../session/current.js';\n"))
        .length,
      1,
      'the SPA plugin knows no sessions either',
    );
    for (const file of ['src/config/load.ts', 'src/proxy/forward.ts', 'src/endpoints/login.ts']) {
      assert.equal(
        (await boundaryErrors(file, "import { answerSpaRequest } from '../spa/serve.js';\n")).length,
        1,
        `${file} does not import spa/`,
      );
    }
  });

  it('allows what the layout allows', async () => {
    const ok = [
      [
        'src/oauth/x.ts',
        "import type { BffConfig } from '../config/types.js';\nimport * as jose from 'jose';\n",
      ],
      ['src/oauth/x.ts', "import type { KeyValueStore } from '../store/store.js';\n"],
      [
        'src/spa/plugin.ts',
        "import fastifyStatic from '@fastify/static';\nimport type { SpaConfig } from '../config/types.js';\n",
      ],
      [
        'src/spa/serve.ts',
        "import type { SpaConfig } from '../config/types.js';\nimport { BffError } from '../errors.js';\n",
      ],
      ['src/server/x.ts', "import { registerSpa } from '../spa/plugin.js';\n"],
      ['src/proxy/x.ts', "import { currentSession } from '../session/current.js';\n"],
      [
        'src/server/x.ts',
        "import Fastify from 'fastify';\nimport { Forwarder } from '../proxy/forward.js';\n",
      ],
    ];
    for (const [file, source] of ok) {
      assert.deepEqual(await boundaryErrors(file!, source!), [], `${file}: ${source}`);
    }
  });
});

describe('import graph', () => {
  it('has no cycles in src/ (type-only imports included)', () => {
    const graph = importGraph('src');
    assert.ok(graph.size > 50, 'the whole source tree was read');
    assert.ok(graph.get('main.ts')?.includes('config/load.ts'), 'relative imports are resolved');
    assert.deepEqual(importCycles(graph), []);
  });

  it('finds a cycle when there is one', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ]);
    assert.deepEqual(importCycles(graph), [['a.ts', 'b.ts', 'c.ts']]);
  });
});
