import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs, type ParseArgsConfig } from 'node:util'

/**
 * A bench script's options (node:util's parseArgs), with `--help` and a mistyped option answered
 * by the usage lines of the script's own header comment (its lines that start with `npm` or
 * `npx` or `node`) instead of a stack: exit 0 for `--help`, 2 for a mistake.
 *
 * @example
 * const { values } = benchArgs(import.meta.url, { options: { users: { type: 'string' } } })
 */
export function benchArgs<T extends ParseArgsConfig>(scriptUrl: string, config: T) {
  const args = config.args ?? process.argv.slice(2)
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(usageOf(scriptUrl))
    process.exit(0)
  }
  try {
    return parseArgs(config)
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${usageOf(scriptUrl)}`)
    process.exit(2)
  }
}

function usageOf(scriptUrl: string): string {
  const path = fileURLToPath(scriptUrl)
  const header = /^\/\*\*([\s\S]*?)\*\//.exec(readFileSync(path, 'utf8'))?.[1] ?? ''
  const lines = header
    .split('\n')
    .map((line) => line.replace(/^\s*\* ?/, ''))
    .filter((line) => /^\s*(npm|npx|node)\b/.test(line))
  const name = path.slice(path.lastIndexOf('/bench/') + 1)
  return lines.length > 0
    ? `usage (${name}):\n${lines.map((line) => `  ${line.trim()}`).join('\n')}\n`
    : `usage: see the comment at the top of ${name}\n`
}

/**
 * `--flags name=--node-flag …` values as node flags by server name: the extra flags a bench
 * runs this checkout's presenced with under that name, to try a V8 flag beside the same code
 * without it.
 *
 * @example
 * nodeFlagsByServer(['semi2=--max-semi-space-size=2']) // Map { 'semi2' => ['--max-semi-space-size=2'] }
 */
export function nodeFlagsByServer(values: readonly string[]): Map<string, string[]> {
  const flags = new Map<string, string[]>()
  for (const value of values) {
    const at = value.indexOf('=')
    flags.set(
      value.slice(0, at),
      value
        .slice(at + 1)
        .split(' ')
        .filter(Boolean),
    )
  }
  return flags
}
