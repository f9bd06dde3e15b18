/** answerSpaRequest (src/spa/serve.ts), the framework-free decision, on real files in a temp dir. */
import { strict as assert } from 'node:assert';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SpaConfig } from '../../src/config/types.js';
import { answerSpaRequest } from '../../src/spa/serve.js';

const HTML = 'text/html';
const RESERVED = ['/auth', '/api'];

describe('answerSpaRequest', () => {
  let dir: string;
  let files: SpaConfig;
  const origin: SpaConfig = { kind: 'origin', url: new URL('https://cdn.example.com/app/'), headers: [] };

  before(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'spa-answer-')));
    writeFileSync(join(dir, 'index.html'), 'index');
    writeFileSync(join(dir, 'app.3f2a9c1d.js'), 'app');
    files = { kind: 'static', dir, headers: [] };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('answers only GET and HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      for (const spa of [files, origin]) {
        const answer = await answerSpaRequest(spa, { method, url: '/orders', accept: HTML }, RESERVED);
        assert.equal(answer.kind, 'not-found', `${method} ${spa.kind}`);
      }
    }
    const head = await answerSpaRequest(files, { method: 'HEAD', url: '/orders', accept: HTML }, RESERVED);
    assert.deepEqual(head, { kind: 'file', dir, file: 'index.html', cacheControl: 'no-store' });
  });

  it('maps a request onto the frontend URL, the index for navigations', async () => {
    const asset = await answerSpaRequest(
      origin,
      { method: 'GET', url: '/a/b.js?v=1', accept: '*/*' },
      RESERVED,
    );
    assert.equal(asset.kind === 'origin' && asset.url.href, 'https://cdn.example.com/app/a/b.js?v=1');
    assert.equal(asset.kind === 'origin' && asset.index, false);
    const page = await answerSpaRequest(
      origin,
      { method: 'GET', url: '/orders/1?x', accept: HTML },
      RESERVED,
    );
    assert.equal(page.kind === 'origin' && page.url.href, 'https://cdn.example.com/app/index.html');
    assert.equal(page.kind === 'origin' && page.index, true);
    const reserved = await answerSpaRequest(
      origin,
      { method: 'GET', url: '/auth/x', accept: HTML },
      RESERVED,
    );
    assert.equal(reserved.kind, 'not-found');
  });

  it('leaves dotted segments to a frontend origin (Vite’s /node_modules/.vite/), refuses them in a directory', async () => {
    const url = '/node_modules/.vite/deps/react.js?v=3';
    const vite = await answerSpaRequest(origin, { method: 'GET', url, accept: '*/*' }, RESERVED);
    assert.equal(vite.kind === 'origin' && vite.url.href, `https://cdn.example.com/app${url}`);
    writeFileSync(join(dir, '.env'), 'secret');
    const dotfile = await answerSpaRequest(files, { method: 'GET', url: '/.env', accept: '*/*' }, RESERVED);
    assert.equal(dotfile.kind, 'not-found');
  });
});
