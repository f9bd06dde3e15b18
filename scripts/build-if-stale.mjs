#!/usr/bin/env node
// Runs `npm run build` only when an input of the TypeScript build is newer than its output, the way
// make decides: `npm start` and `npm test` then start at once on an unchanged checkout instead of
// recompiling for seconds. Inputs are the files tsc reads (src, test, bench, tsconfig, package.json);
// the output is compared file by file (src/a.ts → dist/src/a.js), so a missing output also rebuilds.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = process.cwd();

function* tsFiles(dir) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* tsFiles(path);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield path;
  }
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

function stale() {
  const configMtime = Math.max(
    ...['tsconfig.json', 'package.json', 'package-lock.json'].map((f) => mtime(join(root, f)) ?? 0),
  );
  for (const dir of ['src', 'test', 'bench']) {
    for (const source of tsFiles(join(root, dir))) {
      const output = join(root, 'dist', source.slice(root.length + 1).replace(/\.ts$/, '.js'));
      const outputMtime = mtime(output);
      if (outputMtime === undefined) return `${output} is missing`;
      if (outputMtime < (mtime(source) ?? 0)) return `${source} changed`;
      if (outputMtime < configMtime) return 'the build configuration changed';
    }
  }
  return undefined;
}

const reason = stale();
if (reason) {
  if (process.env.npm_lifecycle_event === 'prestart') process.stderr.write(`building (${reason})…\n`);
  const result = spawnSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit', shell: false });
  process.exit(result.status ?? 1);
}
