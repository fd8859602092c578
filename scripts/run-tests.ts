/**
 * Runs every *.test.ts under src, test and sdk with Node's test runner. Node 20 does not find
 * .ts files by itself (`node --test src` would run zero tests and pass), so the list is explicit.
 * Usage: npm test [-- <path filter>...]
 *
 * Tests import the SDK's TypeScript source (the `presenced-source` export condition), so an SDK
 * change is tested without a rebuild; tests that run the CLI through bin/ or pack the packages
 * use dist/, which is rebuilt first when a source is newer.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { buildIfStale } from './build.js'

const roots = ['src', 'test', 'sdk']
const skip = new Set(['node_modules', 'dist', 'data', 'test-output'])

function findTests(dir: string, out: string[]): string[] {
  let entries: string[]
  try {
    entries = readdirSync(dir)
  } catch {
    return out
  }
  for (const name of entries) {
    if (skip.has(name)) continue
    const path = join(dir, name)
    if (statSync(path).isDirectory()) findTests(path, out)
    else if (name.endsWith('.test.ts')) out.push(path)
  }
  return out
}

const filters = process.argv.slice(2)
const files = roots
  .flatMap((root) => findTests(root, []))
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .sort()

if (files.length === 0) {
  console.error('no test files found')
  process.exit(1)
}
buildIfStale()
console.log(`running ${files.length} test files`)
const result = spawnSync(
  process.execPath,
  [
    '--conditions=presenced-source',
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=2',
    // a whole file counts as one test here: the longest (admin-import, webhooks-cli) pass in
    // ~40 s alone and went past 120 s beside benches at load average 15-20
    '--test-timeout=300000',
    ...files,
  ],
  { stdio: 'inherit' },
)
process.exit(result.status ?? 1)
