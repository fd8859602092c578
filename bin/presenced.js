#!/usr/bin/env node
// Runs the compiled CLI. In a source checkout (src/ beside dist/) it first rebuilds dist/ when
// a source is newer, so `npm start` and `npx presenced` never run an old build; an installed
// package has no src/ and runs dist/ as shipped.
import { existsSync } from 'node:fs'

if (existsSync(new URL('../src/cli/main.ts', import.meta.url))) {
  const { buildIfStale } = await import('../scripts/build.js')
  try {
    buildIfStale()
  } catch (error) {
    console.error(`presenced: ${error.message}`)
    process.exit(1)
  }
}
await import('../dist/cli/main.js')
