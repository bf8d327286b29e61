// One lint configuration for the package, the sample and the tests.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

const NEST_AND_RXJS = [
  { group: ['@nestjs/*'], message: 'This layer never loads Nest.' },
  { group: ['rxjs', 'rxjs/*'], message: 'This layer never loads rxjs.' },
];

/** A regular expression on the import string, with the reason shown when it matches. */
const banned = (regex, message) => ({ regex, message });

/**
 * One no-restricted-imports rule per layer. lib/qtnetwork: core <- kernel <- socket <- ssl,
 * and none of them reaches the transport or Nest. lib/transport/wire: the protocol engine,
 * no Nest, no rxjs, nothing of the transport above it, the Qt port only through its index.
 * lib/transport: the Qt port only through its index. lib/module: the transport's index only.
 */
function layerRules() {
  const qtOnlyDown = banned('(^|/)(transport|module)/', 'The Qt port never imports the transport.');
  const qtIndexOnly = banned(
    'qtnetwork/(core|kernel|socket|ssl)/',
    "Use the Qt port's public index (qtnetwork/index.js).",
  );
  const layer = (files, patterns) => ({
    files,
    rules: { 'no-restricted-imports': ['error', { patterns }] },
  });
  return [
    layer(
      ['lib/qtnetwork/core/**/*.ts'],
      [
        ...NEST_AND_RXJS,
        qtOnlyDown,
        banned('(^|/)(kernel|socket|ssl)/', 'core is the lowest layer: it imports no other room.'),
      ],
    ),
    layer(
      ['lib/qtnetwork/kernel/**/*.ts'],
      [...NEST_AND_RXJS, qtOnlyDown, banned('(^|/)(socket|ssl)/', 'kernel may import core only.')],
    ),
    layer(
      ['lib/qtnetwork/socket/**/*.ts'],
      [
        ...NEST_AND_RXJS,
        qtOnlyDown,
        banned('(^|/)ssl/', 'socket may import core and kernel only.'),
      ],
    ),
    layer(['lib/qtnetwork/ssl/**/*.ts', 'lib/qtnetwork/*.ts'], [...NEST_AND_RXJS, qtOnlyDown]),
    layer(
      ['lib/transport/wire/**/*.ts'],
      [
        ...NEST_AND_RXJS,
        qtIndexOnly,
        banned(
          '^\\.\\./[^./]',
          'wire is below the Nest strategy and client: it imports nothing of theirs.',
        ),
        banned('(^|/)module/', 'wire never imports the module.'),
      ],
    ),
    // OpenTelemetry for the strategy and the client: the API only (types, and a lazy require).
    layer(
      ['lib/transport/telemetry/**/*.ts'],
      [
        ...NEST_AND_RXJS,
        banned(
          '^\\.\\./',
          'telemetry imports nothing of the transport, the Qt port or the module.',
        ),
      ],
    ),
    layer(
      ['lib/transport/*.ts'],
      [qtIndexOnly, banned('(^|/)module/', 'The transport never imports the module above it.')],
    ),
    layer(
      ['lib/module/**/*.ts'],
      [
        banned('transport/(?!index\\.js$)', "The module imports the transport's index only."),
        banned('qtnetwork/', 'The module imports the transport only.'),
      ],
    ),
  ];
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setImmediate: 'readonly',
        clearImmediate: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  // A Promise in a condition is always truthy: `if (!server.listen(name))` without `await`
  // never sees a failure. tsc rejects `if (promise)` (TS2801) but accepts `!promise`; this
  // rule rejects both (test/qtnetwork/types/promise-conditions.spec.ts). It needs type
  // information, hence the project service (TypeScript files only).
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksConditionals: true, checksVoidReturn: false, checksSpreads: false },
      ],
    },
  },
  // The layers (README, "Architecture"): imports point down only, and a wrong one fails lint.
  ...layerRules(),
  {
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
