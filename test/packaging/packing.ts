/**
 * What the packaging tests share: pack a package of this repository as `npm pack` would for a
 * release, make an empty project in a temporary folder, and run commands there as a user would.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { buildIfStale } from '../../scripts/build.js'

export const ROOT = resolve(import.meta.dirname, '../..')

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * The environment of a user's shell: without what `npm test` adds (npm_* settings of the outer
 * npm, which would steer the inner one) and without NODE_OPTIONS (no tsx, no source condition).
 */
export function userEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^npm_/i.test(key) || key === 'NODE_OPTIONS') continue
    env[key] = value
  }
  return { ...env, ...extra }
}

export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? userEnv() })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('error', fail)
    child.on('close', (code) => done({ code, stdout, stderr }))
  })
}

/** Fails with everything the command said, so a failed install or pack explains itself. */
export async function runOk(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<Run> {
  const result = await run(command, args, options)
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`,
    )
  }
  return result
}

/** Registers a cleanup: `(fn) => t.after(fn)` in a test, node:test's `after` in a file. */
export type OnCleanup = (cleanup: () => void) => void

export function tempDir(onCleanup: OnCleanup, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `presenced-${prefix}-`))
  onCleanup(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** An empty project: a folder with a bare package.json, so npm installs into it and no parent. */
export function emptyProject(onCleanup: OnCleanup): string {
  const dir = tempDir(onCleanup, 'consumer')
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }),
  )
  return dir
}

export interface Packed {
  tarball: string
  /** Paths inside the tarball, e.g. dist/index.js. */
  files: string[]
}

/**
 * Packs the server (workspace undefined) or a workspace package into `destination`.
 * The build is brought up to date first, and pack runs with --ignore-scripts: its prepack would
 * rebuild dist/ in place while other test files run the CLI from it.
 */
export async function pack(destination: string, workspace?: string): Promise<Packed> {
  buildIfStale()
  const args = ['pack', '--json', '--ignore-scripts', '--pack-destination', destination]
  if (workspace) args.push('--workspace', workspace)
  const { stdout } = await runOk('npm', args, { cwd: ROOT })
  const [info] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
  return {
    tarball: join(destination, info!.filename),
    files: info!.files.map((file) => file.path),
  }
}
