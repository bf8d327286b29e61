// Jest runs in ESM mode (node --experimental-vm-modules, see the `test` script): the
// sources are ES modules, as Nest 12 is (the package ships them compiled to CommonJS, with
// ESM entry points: scripts/build-package.mjs).

// TEST_TIME_SCALE multiplies the test timeout, as it does the tests' own waits for the
// machine (test/helpers/time-budget.ts, which validates it).
const timeScale = Number(process.env.TEST_TIME_SCALE) > 0 ? Number(process.env.TEST_TIME_SCALE) : 1;

/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  // test/consumers/ holds other projects (installed and run by test/consumers/run.sh).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/consumers/'],
  modulePathIgnorePatterns: ['<rootDir>/test/consumers/'],
  extensionsToTreatAsEsm: ['.ts'],
  // Sources import siblings with the `.js` extension that NodeNext requires;
  // Jest resolves the `.ts` file behind it.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  // Socket tests open real loopback connections; two workers fit this 2-core machine.
  maxWorkers: 2,
  // Transpiles the TypeScript that child processes import, once per run, before any test:
  // children then start from JavaScript (test/fixtures/ts-cache.mjs).
  globalSetup: '<rootDir>/test/fixtures/precompile-ts.mjs',
  testTimeout: Math.round(30000 * timeScale),
  verbose: true,
};
