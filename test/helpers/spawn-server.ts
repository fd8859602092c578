import { spawn, type ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'
import type { TestContext } from 'node:test'

/** The servers spawned here exit with the test process (see the file). */
const EXIT_WITH_PARENT = new URL('./exit-with-parent.ts', import.meta.url).href

const ROOT = resolve(import.meta.dirname, '../..')

export interface LogLine {
  msg?: string
  level?: number
  [key: string]: unknown
}

export interface ServerProcess {
  /** Base URL, e.g. http://127.0.0.1:40123. */
  url: string
  child: ChildProcess
  /** Every JSON log line so far. */
  logs: LogLine[]
  /** Resolves with the first log line whose msg matches (including lines already seen). */
  logged(msg: string | RegExp): Promise<LogLine>
  /** Resolves with the exit code (null if killed by a signal). */
  exited: Promise<number | null>
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>
}

/**
 * Starts `presenced serve` as a real child process, the way `npm start` does, on a free port
 * (PORT=0) of 127.0.0.1, and resolves once it logs that it is up. Killed when the test ends if
 * it is still running.
 */
export async function spawnServer(
  t: TestContext,
  env: Record<string, string>,
): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--import', EXIT_WITH_PARENT, 'src/cli/main.ts', 'serve'],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        ...env,
      },
      // stdin: see exit-with-parent.ts
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  )
  const logs: LogLine[] = []
  const waiters: Array<{ match: (line: LogLine) => boolean; done: (line: LogLine) => void }> = []
  let stderr = ''
  let buffered = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString()
    let newline: number
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      let line: LogLine
      try {
        line = JSON.parse(text) as LogLine
      } catch {
        continue
      }
      logs.push(line)
      for (const waiter of [...waiters]) {
        if (waiter.match(line)) {
          waiters.splice(waiters.indexOf(waiter), 1)
          waiter.done(line)
        }
      }
    }
  })
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)))
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })

  const logged = (msg: string | RegExp): Promise<LogLine> => {
    const match = (line: LogLine) =>
      typeof msg === 'string' ? line.msg === msg : msg.test(line.msg ?? '')
    const seen = logs.find(match)
    if (seen) return Promise.resolve(seen)
    return new Promise<LogLine>((done, fail) => {
      waiters.push({ match, done })
      void exited.then((code) =>
        fail(new Error(`presenced exited (${code}) before logging ${msg}:\n${stderr}`)),
      )
    })
  }

  const up = await logged('presenced is up')
  return {
    url: up.url as string,
    child,
    logs,
    logged,
    exited,
    stop: () => {
      child.kill('SIGTERM')
      return exited
    },
  }
}
