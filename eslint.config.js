// ESLint (flat config) with typescript-eslint: correctness rules, no explicit any, no floating
// promises in src (an unawaited promise is an unhandled rejection waiting to happen).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Module boundaries (folders by concept; Fastify only at the edge). Each entry: the folder, and the
 * folders/packages it must never import. Import cycles are caught by test/unit/architecture.test.ts.
 */
const FASTIFY = {
  regex: '^(fastify|@fastify/.*|fastify-.*)$',
  message: 'Fastify only at the edge (plugin.ts, server/, main.ts, cli/).',
};
const folders = (...names) => ({
  regex: `^(\\.{1,2}/)+(${names.join('|')})/`,
  message: `crosses a module boundary: this folder must not import ${names.map((n) => `${n}/`).join(', ')} (README, Layout).`,
});
const BOUNDARIES = [
  {
    files: ['src/oauth/**/*.ts'],
    patterns: [FASTIFY, folders('session', 'proxy', 'endpoints', 'server', 'dev', 'spa')],
  },
  {
    files: ['src/dpop/**/*.ts'],
    patterns: [FASTIFY, folders('session', 'proxy', 'endpoints', 'server', 'dev', 'spa')],
  },
  {
    files: ['src/jose/**/*.ts'],
    patterns: [
      FASTIFY,
      folders(
        'oauth',
        'dpop',
        'store',
        'session',
        'proxy',
        'endpoints',
        'server',
        'dev',
        'observability',
        'spa',
      ),
    ],
  },
  {
    files: ['src/store/**/*.ts'],
    patterns: [FASTIFY, folders('oauth', 'dpop', 'session', 'proxy', 'endpoints', 'server', 'dev', 'spa')],
  },
  {
    files: ['src/config/**/*.ts'],
    patterns: [
      FASTIFY,
      folders('oauth', 'dpop', 'store', 'session', 'proxy', 'endpoints', 'server', 'dev', 'spa'),
    ],
  },
  {
    files: ['src/observability/**/*.ts'],
    patterns: [
      FASTIFY,
      folders('config', 'oauth', 'dpop', 'store', 'session', 'proxy', 'endpoints', 'server', 'dev', 'spa'),
    ],
  },
  {
    files: ['src/session/**/*.ts'],
    patterns: [FASTIFY, folders('proxy', 'endpoints', 'server', 'dev', 'spa')],
  },
  {
    files: ['src/proxy/**/*.ts'],
    ignores: ['src/proxy/plugin.ts'],
    patterns: [FASTIFY, folders('endpoints', 'dev', 'spa')],
  },
  { files: ['src/proxy/plugin.ts'], patterns: [folders('endpoints', 'dev', 'spa')] },
  // The /auth/** handlers register routes themselves: Fastify is allowed there (the edge).
  { files: ['src/endpoints/**/*.ts'], patterns: [folders('proxy', 'dev', 'spa')] },
  // Serving the SPA: files and origins know no sessions, tokens or IdP; Fastify only in its plugin.ts.
  {
    files: ['src/spa/**/*.ts'],
    ignores: ['src/spa/plugin.ts'],
    patterns: [
      FASTIFY,
      folders('oauth', 'dpop', 'store', 'session', 'proxy', 'endpoints', 'server', 'dev', 'keys', 'jose'),
    ],
  },
  {
    files: ['src/spa/plugin.ts'],
    patterns: [
      folders('oauth', 'dpop', 'store', 'session', 'proxy', 'endpoints', 'server', 'dev', 'keys', 'jose'),
    ],
  },
].map(({ files, ignores, patterns }) => ({
  files,
  ...(ignores ? { ignores } : {}),
  rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'demo/**', 'test-results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
  {
    // node:test's describe/it return promises by design; in src and bench an unawaited promise is a bug.
    files: ['src/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-floating-promises': 'error' },
  },
  ...BOUNDARIES,
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
