// The package as published: its generated types current with openapi.yaml,
// its size, its declarations, a module a plain page can import, and a
// lockfile that installs from the npm registry alone.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

import { build } from 'esbuild';

const run = promisify(execFile);
const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const read = (p) => readFileSync(join(pkg, p), 'utf8');
const bin = (name) => join(pkg, 'node_modules', '.bin', name);

/** maxSize is the bound: 3 kB minified and gzipped. */
const maxSize = 3072;

test('src/openapi.ts is what openapi-typescript makes of openapi.yaml', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-js-types-'));
  try {
    const out = join(dir, 'openapi.ts');
    await run(bin('openapi-typescript'), ['../../openapi.yaml', '-o', out], { cwd: pkg, timeout: 60_000 });
    assert.ok(
      readFileSync(out, 'utf8') === read('src/openapi.ts'),
      'src/openapi.ts is stale: run `npm run generate` in clients/js and commit it',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the bundled module is at most 3 kB minified and gzipped', async (t) => {
  const { outputFiles } = await build({
    entryPoints: [join(pkg, 'dist', 'index.js')],
    bundle: true,
    minify: true,
    format: 'esm',
    write: false,
    logLevel: 'silent',
  });
  const min = outputFiles[0].contents;
  const size = gzipSync(min, { level: 9 }).length;
  t.diagnostic(`size: ${size} bytes minified and gzipped (${min.length} minified), at most ${maxSize}`);
  console.log(`@latchkey/client: ${size} bytes minified and gzipped (${min.length} minified), at most ${maxSize}`);
  assert.ok(size <= maxSize, `${size} bytes minified and gzipped, over ${maxSize}`);
});

test('dist/index.js imports nothing: a plain page loads it with <script type="module">', () => {
  const js = read('dist/index.js');
  assert.doesNotMatch(js, /^\s*(import|export\s+\*|export\s+\{[^}]*\}\s+from)\b.*$/m);
  assert.match(js, /export function createClient/);
});

test('the published declarations type a page', { timeout: 60_000 }, async () => {
  // test/types.ts imports @latchkey/client by name, through the exports'
  // types: dist/index.d.ts.
  await run(bin('tsc'), ['-p', 'tsconfig.test.json'], { cwd: pkg, timeout: 60_000 }).catch((e) => {
    assert.fail(`tsc -p tsconfig.test.json:\n${e.stdout}${e.stderr}`);
  });
});

test('package.json: no runtime dependencies, exact dev dependencies, dist only', () => {
  const p = JSON.parse(read('package.json'));
  assert.equal(p.name, '@latchkey/client');
  assert.equal(p.type, 'module');
  assert.equal(p.dependencies, undefined);
  assert.equal(p.peerDependencies, undefined);
  assert.deepEqual(p.files, ['dist']);
  assert.deepEqual(p.exports['.'], { types: './dist/index.d.ts', default: './dist/index.js' });
  assert.deepEqual(Object.keys(p.devDependencies).sort(), ['esbuild', 'openapi-typescript', 'typescript']);
  for (const [name, version] of Object.entries(p.devDependencies)) {
    assert.match(version, /^\d+\.\d+\.\d+$/, `${name} is pinned exactly`);
  }
});

test('package-lock.json holds no download address, so it installs from any registry', () => {
  assert.match(read('.npmrc'), /^omit-lockfile-registry-resolved=true$/m);
  const text = read('package-lock.json');
  const lock = JSON.parse(text);
  assert.equal(lock.lockfileVersion, 3);
  assert.ok(Object.keys(lock.packages).length > 1, 'the lockfile lists the packages');
  for (const [path, entry] of Object.entries(lock.packages)) {
    assert.equal(entry.resolved, undefined, `${path} has a resolved address`);
    if (path) assert.match(entry.integrity ?? '', /^sha512-/, `${path} has its integrity`);
  }
  assert.doesNotMatch(text, /"resolved"/);
  assert.doesNotMatch(text, /:\/\//, 'no URL at all');
  // No host name either: a dotted name ending in a top-level domain.
  assert.doesNotMatch(text, /\b[a-z0-9-]+(\.[a-z0-9-]+)*\.(com|org|net|io|dev|sh|app|co|cloud)\b/i);
});
