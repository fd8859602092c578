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
  // The dependency arrows of DESIGN.md: core <- store/realtime <- service <- protocols <- app.
  {
    files: ['src/core/**/*.ts'],
    rules: restrict([
      {
        group: [
          '../store/*',
          '../realtime/*',
          '../service/*',
          '../protocols/*',
          '../app/*',
          '../cli/*',
          'fastify',
          'ioredis',
          'better-sqlite3',
        ],
        message: 'core is pure: it imports nothing outside core.',
      },
    ]),
  },
  {
    files: ['src/store/**/*.ts', 'src/realtime/**/*.ts'],
    rules: restrict([
      {
        group: ['**/service/*', '**/protocols/*', '**/app/*', '**/cli/*'],
        message: 'store and realtime depend on core only.',
      },
    ]),
  },
  {
    files: ['src/service/**/*.ts'],
    rules: restrict([
      {
        group: ['**/protocols/*', '**/app/*', '**/cli/*', 'fastify'],
        message: 'service depends on core and ports only.',
      },
    ]),
  },
  {
    files: ['src/protocols/**/*.ts'],
    rules: restrict([
      { group: ['**/app/*', '**/cli/*'], message: 'protocols do not know the app.' },
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
