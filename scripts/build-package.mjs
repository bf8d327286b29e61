// The package build (`npm run build:package`, run by `npm pack`): lib/ compiled to
// CommonJS in dist/cjs (tsconfig.cjs.json), and ESM entry points in dist/esm.
//
// The package has ONE implementation, in CommonJS, so that `require` works everywhere a
// Nest project is (Jest + ts-jest, `module: commonjs`), and the ESM entry points only
// re-export it. `import` and `require` therefore give the same class objects: a second
// copy of ServerQt, ClientQt, QtContext, the error classes or the Qt classes would fail
// the `instanceof` checks that Nest and users make (the dual package hazard). On Nest 12,
// which is ESM-only, the CommonJS build loads Nest through Node's require(esm) (Node
// ^20.19, 22.12+, 24).
//
// `npm run build` is another build, of lib/, sample/ and bench/ as ES modules to dist/lib,
// dist/sample and dist/bench, for this repository's own programs; it is not packed.
//
// Steps: empty dist/cjs and dist/esm; tsc; dist/cjs/package.json ({"type": "commonjs"}: a
// CommonJS folder inside an ESM package); the ESM entry files and their declarations. Then
// checks, each in a fresh Node as a user's process would load the package: every name of
// each CommonJS entry point is importable from its ESM entry point (Node finds the names
// with cjs-module-lexer) as the same object; and the Qt layer requires no Nest, no rxjs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(import.meta.dirname, '..');
const dist = path.join(root, 'dist');
const cjs = path.join(dist, 'cjs');
const esm = path.join(dist, 'esm');

/** The package's entry points (package.json `exports`), as paths under dist/cjs and dist/esm. */
const ENTRIES = ['index', 'qtnetwork/index'];

function fail(message) {
  console.error(`build-package: ${message}`);
  process.exit(1);
}

rmSync(cjs, { recursive: true, force: true });
rmSync(esm, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.cjs.json'], { cwd: root, stdio: 'inherit' });
} catch {
  fail('tsc -p tsconfig.cjs.json failed');
}
writeFileSync(path.join(cjs, 'package.json'), JSON.stringify({ type: 'commonjs' }, null, 2) + '\n');

for (const entry of ENTRIES) {
  const file = path.join(esm, `${entry}.js`);
  mkdirSync(path.dirname(file), { recursive: true });
  const target = path.relative(path.dirname(file), path.join(cjs, `${entry}.js`));
  const line = `export * from '${target.startsWith('.') ? target : `./${target}`}';\n`;
  const note =
    '// The ESM entry point: the CommonJS build (dist/cjs), re-exported, one copy of every class.\n';
  writeFileSync(file, note + line);
  writeFileSync(path.join(esm, `${entry}.d.ts`), line);
}

// Each check runs in a fresh Node, as a user's process would load the package.
for (const entry of ENTRIES) {
  const cjsFile = path.join(cjs, `${entry}.js`);
  const esmUrl = pathToFileURL(path.join(esm, `${entry}.js`)).href;
  const script = `
    const { createRequire } = await import('node:module');
    const required = createRequire(import.meta.url)(${JSON.stringify(cjsFile)});
    const imported = await import(${JSON.stringify(esmUrl)});
    const names = Object.keys(required).filter((n) => n !== '__esModule');
    const missing = names.filter((n) => !(n in imported));
    const different = names.filter((n) => n in imported && imported[n] !== required[n]);
    console.log(JSON.stringify({ names: names.length, missing, different }));
  `;
  let result;
  try {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
    });
    result = JSON.parse(out.trim().split('\n').pop());
  } catch (error) {
    fail(`loading ${entry} failed:\n${error.stderr ?? error}`);
  }
  if (result.missing.length > 0) {
    fail(`${entry}: not importable from ESM: ${result.missing.join(', ')}`);
  }
  if (result.different.length > 0) {
    fail(`${entry}: different objects through import and require: ${result.different.join(', ')}`);
  }
  console.log(
    `build-package: ${entry}: ${result.names} names, the same through import and require`,
  );
}

// The Qt layer is usable alone: nothing under dist/cjs/qtnetwork requires Nest or rxjs.
function* files(dir) {
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) yield* files(full);
    else if (name.endsWith('.js')) yield full;
  }
}
for (const file of files(path.join(cjs, 'qtnetwork'))) {
  if (/require\(["'](@nestjs\/|rxjs)/.test(readFileSync(file, 'utf8'))) {
    fail(`${path.relative(root, file)} requires Nest or rxjs`);
  }
}
