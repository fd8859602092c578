/** The resolve hook of compiled.mjs (registered there): sources to their build. */
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** `<checkout>/src/<path>.ts` to `<checkout>/dist/<path>.js`, where that file exists. */
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context)
  if (!resolved.url.startsWith('file:') || !resolved.url.endsWith('.ts')) return resolved
  const match = /^(.*)\/src\/(.*)\.ts$/.exec(fileURLToPath(resolved.url))
  if (match === null || match[2].endsWith('.test')) return resolved
  const built = `${match[1]}/dist/${match[2]}.js`
  if (!existsSync(built) || !existsSync(`${match[1]}/package.json`)) return resolved
  return { url: pathToFileURL(built).href, format: 'module', shortCircuit: true }
}
