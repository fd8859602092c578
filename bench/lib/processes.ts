import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'

const children = new Set<ChildProcess>()
// a bench that throws must not leave a server holding gigabytes behind
process.once('exit', () => {
  for (const child of children) child.kill()
})

/**
 * Spawns a node process (TypeScript through tsx) and resolves with its first JSON stdout line.
 * The child is killed when this process exits, if not before.
 */
export function spawnJson<T>(
  script: string,
  args: string[],
  nodeFlags: string[] = [],
  env: Record<string, string> = {},
  /** The checkout to run `script` in (a baseline's), default this one. */
  cwd?: string,
): Promise<{ child: ChildProcess; info: T }> {
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', script, ...args], {
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
