import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createInterface } from 'node:readline'

const children = new Set<ChildProcess>()
// a bench that throws must not leave a server holding gigabytes behind
process.once('exit', () => {
  for (const child of children) child.kill()
})

/** The `--import` that loads a checkout's presenced from its tsc build (compiled.mjs). */
export const COMPILED = fileURLToPath(new URL('./compiled.mjs', import.meta.url))

const built = new Set<string>()

/**
 * The node flags that run presenced as `npm start` does, from the checkout's current tsc build
 * (built first if stale, once per checkout and process): see compiled.mjs.
 */
export function compiledFlags(checkout: string): string[] {
  if (process.env.PRESENCED_BENCH_SOURCE === '1') return []
  if (!built.has(checkout)) {
    const build = join(checkout, 'scripts/build.js')
    if (existsSync(build)) {
      const done = spawnSync(process.execPath, [build, '--if-stale'], {
        cwd: checkout,
        stdio: 'inherit',
      })
      if (done.status !== 0) throw new Error(`building ${checkout} failed`)
    }
    built.add(checkout)
  }
  return ['--import', COMPILED]
}

/**
 * compiledFlags for this process: presenced's sources imported from now on load from the
 * checkout's tsc build (built first if stale); with PRESENCED_BENCH_SOURCE=1, from the sources.
 * For a bench that builds presenced in its own process (realtime-fanout.ts): static imports are
 * resolved before this runs, so presenced's modules are then imported with import().
 */
export async function useCompiled(checkout: string): Promise<void> {
  if (compiledFlags(checkout).length > 0) await import(pathToFileURL(COMPILED).href)
}

/** The checkout a bench script belongs to: `cwd`, or the folder holding an absolute script's bench/. */
function checkoutOf(script: string, cwd: string | undefined): string {
  if (cwd !== undefined) return cwd
  const at = script.lastIndexOf('/bench/')
  return isAbsolute(script) && at >= 0 ? script.slice(0, at) : process.cwd()
}

/**
 * Spawns a node process (TypeScript through tsx, presenced from its build: compiledFlags) and
 * resolves with its first JSON stdout line. The child is killed when this process exits, if not
 * before.
 */
export function spawnJson<T>(
  script: string,
  args: string[],
  nodeFlags: string[] = [],
  env: Record<string, string> = {},
  /** The checkout to run `script` in (a baseline's), default this one. */
  cwd?: string,
): Promise<{ child: ChildProcess; info: T }> {
  const flags = [...nodeFlags, '--import', 'tsx', ...compiledFlags(checkoutOf(script, cwd))]
  const child = spawn(process.execPath, [...flags, script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
    ...(cwd !== undefined && { cwd }),
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.once('line', (line) => resolve({ child, info: JSON.parse(line) as T }))
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)))
  })
}

/**
 * The environment `npm start` gives presenced (package.json): glibc's malloc backs large
 * allocations, the stores' buffers among them, with transparent huge pages. Benches start
 * presenced with it, so they measure it as it runs; `malloc: 'plain'` leaves it out.
 */
export function presencedEnv(malloc = 'huge'): Record<string, string> {
  if (malloc !== 'huge' && malloc !== 'plain')
    throw new Error(`malloc: huge or plain, not ${malloc}`)
  if (malloc === 'plain') return {}
  const tunables = process.env.GLIBC_TUNABLES
  return {
    GLIBC_TUNABLES: tunables ? `${tunables}:glibc.malloc.hugetlb=1` : 'glibc.malloc.hugetlb=1',
  }
}

/** Asks a child to stop (SIGTERM) and resolves once it has exited. */
export function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  return exited
}

export function ratio(a: number, b: number): string {
  return `${((a / b) * 100).toFixed(1)} %`
}

/**
 * CPU seconds (user + system) a child has used so far, from /proc (Linux). Per request, it tells
 * what a server costs even when a shared machine gives it less of a core than it would take.
 */
export function cpuSeconds(pid: number): number {
  return systemSeconds(pid, true)
}

/**
 * CPU seconds of a child in the kernel so far (system time: socket reads and writes, mostly);
 * with `andUser`, user time too (cpuSeconds).
 */
export function systemSeconds(pid: number, andUser = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // fields after the command name (which may hold spaces) in parentheses: utime is the 12th
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((andUser ? Number(fields[11]) : 0) + Number(fields[12])) / 100
}

/**
 * The first JSON line (`{…}`) that `child` writes to the file `out` (its stdout sent to a file,
 * not a pipe, so that a child printing while the bench blocks in wrk never stalls), polled.
 */
export async function firstJsonLine<T>(child: ChildProcess, out: string, name: string): Promise<T> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`)
    const line = readFileSync(out, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('{'))
    if (line !== undefined) return JSON.parse(line) as T
    await new Promise((wait) => setTimeout(wait, 200))
  }
}
