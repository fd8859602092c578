import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const restrict = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] })

export default tseslint.config(
  { ignores: ['node_modules', 'data', 'test-output', 'sdk/dist', 'dashboard/vendor'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  // The dependency arrows of DESIGN.md: core <- store <- realtime <- service <- protocols <- app.
  {
    files: ['src/core/**/*.ts'],
    ignores: ['src/core/**/*.test.ts'],
    rules: restrict([
      {
        group: ['../*/**', '!./**', 'fastify', 'ioredis', 'better-sqlite3', 'node:*', 'ws', 'jose'],
        message: 'core is pure: it imports nothing outside core, and no I/O.',
      },
    ]),
  },
  {
    files: ['src/store/**/*.ts'],
    ignores: ['src/store/**/*.test.ts'],
    rules: restrict([
      {
        group: ['**/realtime/*', '**/service/*', '**/protocols/*', '**/app/*', '**/cli/*'],
        message: 'store depends on core only (realtime, service and protocols build on it).',
      },
    ]),
  },
  {
    files: ['src/realtime/**/*.ts'],
    rules: restrict([
      {
        group: ['**/service/*', '**/protocols/*', '**/app/*', '**/cli/*', 'fastify'],
        message: 'realtime depends on core and store ports only.',
      },
    ]),
  },
  {
    files: ['src/service/**/*.ts'],
    // a unit test may build its subject the way the app does
    ignores: ['src/service/**/*.test.ts'],
    rules: restrict([
      {
        group: ['**/protocols/*', '**/app/*', '**/cli/*', 'fastify'],
        message: 'service depends on core and ports only.',
      },
    ]),
  },
  {
    // One boundary: a protocol translates its wire format to service calls and back; the
    // stores, the change bus and the realtime hub are the service's, never a protocol's.
    files: ['src/protocols/**/*.ts'],
    rules: restrict([
      {
        group: ['**/app/*', '**/cli/*', '**/store/*', '**/store/**', '**/realtime/*'],
        message: 'protocols import only core, service and protocols/* (one boundary).',
      },
    ]),
  },
  {
    files: ['sdk/**/*.ts', 'dashboard/**/*.ts'],
    rules: restrict([
      {
        group: ['**/src/*', '../../src/**'],
        message: 'the SDK and dashboard import no server code.',
      },
    ]),
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
)
