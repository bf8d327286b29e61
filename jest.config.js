// Jest runs in ESM mode (node --experimental-vm-modules, see the `test` script):
// the package is ESM-only, as Nest 12 is.
/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  // Sources import siblings with the `.js` extension that NodeNext requires;
  // Jest resolves the `.ts` file behind it.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  // Socket tests open real loopback connections; two workers fit this 2-core machine.
  maxWorkers: 2,
  testTimeout: 30000,
  verbose: true,
};
