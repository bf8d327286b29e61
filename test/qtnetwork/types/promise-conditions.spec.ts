/**
 * A Promise-returning call of the port used as a condition without `await` (`if
 * (!server.listen(name))`) is always truthy and never sees a failure. This checks what the
 * tools catch, on the fixture promise-conditions.ts (every misuse there is tagged "misuse"):
 *
 * - the TypeScript compiler rejects some forms (TS2801), not `!promise` nor `while (promise)`;
 *   the fixture's `@ts-expect-error` lines must all be consumed (no diagnostics at all);
 * - ESLint with the repository's configuration (no-misused-promises, type-aware) rejects
 *   every tagged line and nothing else, once the fixture's own disable comment is ignored.
 *
 * docs/qt-differences.md ("Blocking calls become Promises") tells users to enable the same
 * rule.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { jest } from '@jest/globals';
import { ESLint } from 'eslint';
import ts from 'typescript';

jest.setTimeout(60000);

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const FIXTURE = path.join(here, 'promise-conditions.ts');

/** The 1-based numbers of the fixture's lines tagged "misuse". */
function taggedLines(): number[] {
  return fs
    .readFileSync(FIXTURE, 'utf8')
    .split('\n')
    .flatMap((line, i) => (/\/\/ misuse$/.test(line) ? [i + 1] : []));
}

it('tsc: every @ts-expect-error of the fixture is consumed (TS2801 on if, ?: and &&) and nothing else is reported', () => {
  const config = ts.getParsedCommandLineOfConfigFile(
    path.join(root, 'tsconfig.json'),
    {},
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined },
  );
  expect(config).toBeDefined();
  const program = ts.createProgram([FIXTURE], { ...config!.options, noEmit: true });
  const diagnostics = ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file?.fileName === FIXTURE)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  expect(diagnostics).toEqual([]);
  // The directives are there (a fixture without them would pass vacuously).
  expect(fs.readFileSync(FIXTURE, 'utf8').match(/@ts-expect-error TS2801/g)).toHaveLength(3);
});

it('ESLint (the repository configuration): no-misused-promises reports exactly the tagged lines, `!promise` included', async () => {
  const eslint = new ESLint({ cwd: root, allowInlineConfig: false });
  const [result] = await eslint.lintFiles([FIXTURE]);
  const reported = result.messages
    .filter((m) => m.ruleId === '@typescript-eslint/no-misused-promises')
    .map((m) => m.line);
  expect(reported).toEqual(taggedLines());
  expect(taggedLines().length).toBeGreaterThanOrEqual(7);
  expect(
    result.messages.filter((m) => m.ruleId !== '@typescript-eslint/no-misused-promises'),
  ).toEqual([]);
});
