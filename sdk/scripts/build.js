/**
 * Builds @presenced/client into dist/: ESM and .d.ts from tsc, plus one CommonJS bundle
 * (index.cjs) with .d.cts twins of the declarations, so `require('@presenced/client')` works on
 * Node 20 (which cannot require ES modules) and TypeScript types it as CommonJS.
 * Usage: node sdk/scripts/build.js (from any folder)
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const sdk = fileURLToPath(new URL('..', import.meta.url))
const dist = fileURLToPath(new URL('../dist/', import.meta.url))
const require = createRequire(import.meta.url)

// a clean dist: a module deleted from src must not live on in the package
rmSync(dist, { recursive: true, force: true })

const tsc = spawnSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
  { cwd: sdk, stdio: 'inherit' },
)
if (tsc.status !== 0) process.exit(tsc.status ?? 1)

await build({
  entryPoints: [`${sdk}src/index.ts`],
  outfile: `${dist}index.cjs`,
  bundle: true,
  format: 'cjs',
  platform: 'neutral',
  target: 'es2022',
  logLevel: 'warning',
})

// './x.js' in a .d.cts would name an ES module; './x.cjs' resolves to the .d.cts twin
for (const name of readdirSync(dist)) {
  if (!name.endsWith('.d.ts')) continue
  const text = readFileSync(dist + name, 'utf8').replace(
    /(['"]\.\.?\/[\w./-]+)\.js(['"])/g,
    '$1.cjs$2',
  )
  writeFileSync(dist + name.replace(/\.d\.ts$/, '.d.cts'), text)
}
