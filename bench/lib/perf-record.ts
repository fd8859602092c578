/**
 * `perf record -e cpu-clock` on one process while a load runs, and its samples as CPU µs per
 * request (bench/heartbeat-perf.ts, bench/read-perf.ts). cpu-clock is a software clock: this
 * machine's VM has no hardware counters.
 */
import { spawn, spawnSync } from 'node:child_process'

export interface PerfOptions {
  pid: number
  data: string
  frequency: number
  /** Call graphs too (frame pointers: V8's JIT code keeps them). */
  graph: boolean
  /**
   * The process writes V8's jitdump (node --perf-prof): recorded with the clock jitdump uses and
   * injected into `<data>.jit`, for `perf annotate` of JIT code.
   */
  jit?: boolean
}

/** Samples `options.pid` while `load` runs; resolves with what `load` returned. */
export async function recorded<T>(options: PerfOptions, load: () => T): Promise<T> {
  const perf = spawn(
    'perf',
    [
      'record',
      '-e',
      'cpu-clock',
      ...(options.graph ? ['-g'] : []),
      ...(options.jit ? ['-k', '1'] : []),
      '-F',
      String(options.frequency),
      '-p',
      String(options.pid),
      '-o',
      options.data,
    ],
    { stdio: 'ignore' },
  )
  spawnSync('sleep', ['0.3'])
  try {
    return load()
  } finally {
    perf.kill('SIGINT')
    await new Promise((done) => perf.once('exit', done))
    if (options.jit) {
      spawnSync('perf', ['inject', '--jit', '-i', options.data, '-o', `${options.data}.jit`])
    }
  }
}

/** The `top` rows of `perf report --sort <sort>` on `data`, as CPU µs per request. */
export function perRequest(
  data: string,
  sort: string,
  requests: number,
  top: number,
  frequency: number,
): string {
  const period = 1e6 / frequency
  const run = spawnSync(
    'perf',
    ['report', '-i', data, '--no-children', '--sort', sort, '--stdio', '-F', 'sample,' + sort],
    { encoding: 'utf8', maxBuffer: 1 << 28 },
  )
  const rows: Array<[number, string]> = []
  for (const line of run.stdout.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue
    const m = /^\s*(\d+)\s+(.*)$/.exec(line)
    if (m) rows.push([Number(m[1]), m[2]!.trim().replace(/\s+/g, ' ')])
  }
  return rows
    .sort((a, b) => b[0] - a[0])
    .slice(0, top)
    .map(([n, what]) => `${((n * period) / requests).toFixed(2).padStart(8)} µs  ${what}`)
    .join('\n')
}

/** The per-request report of one server: by thread, by DSO, by symbol. */
export function printReport(data: string, requests: number, top: number, frequency: number): void {
  console.log(perRequest(data, 'tid', requests, 10, frequency))
  console.log('-- by dso')
  console.log(perRequest(data, 'dso', requests, 12, frequency))
  console.log('-- by symbol')
  console.log(perRequest(data, 'dso,sym', requests, top, frequency))
}
