import { InvalidIdError, PresencedError, PresenceType, type Presence } from '@presenced/client'
import { chosenUrl, echoed, exchangeWithin, parseTimeout, urlProblem } from './admin-http.js'

export { DEFAULT_URL } from './admin-http.js'

/** Exit codes of every client command. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const

/** A refusal of the command line itself: printed without a stack, exit 2. */
export class UsageError extends Error {}

/** The server, as every command chooses it (chosenUrl); must be http(s). */
export function serverUrl(
  flag: string | undefined,
  env: Record<string, string | undefined> = process.env,
): string {
  const url = chosenUrl(flag, env)
  const problem = urlProblem(url)
  if (problem !== undefined) throw new UsageError(problem)
  return url
}

/** The --timeout option of every command that calls the server, and its help line. */
export const TIMEOUT_OPTION = { timeout: { type: 'string' } } as const
export const TIMEOUT_HELP =
  '  --timeout <s>    give up (exit 1) when the server has not answered a request in full\n' +
  '                   (headers and body) within s seconds; default: wait'

/**
 * The SDK client options of a command: with --timeout, a fetch that gives up on a server whose
 * answer, body included, has not come in full in time (the SDK does not retry that). A refused
 * connection fails at once, not after four retries: at a command line it is more often a wrong
 * --url than an outage.
 */
export function commandClientOptions(timeout: string | undefined) {
  const { ms, problem } = parseTimeout(timeout)
  if (problem !== undefined) throw new UsageError(problem)
  return { timeoutMs: ms, fetch: exchangeWithin(ms), retry: { connectionErrors: false } }
}

/** --token, else PRESENCED_TOKEN; undefined when neither is set. */
export function tokenOf(
  flag: string | undefined,
  env: Record<string, string | undefined> = process.env,
): string | undefined {
  const token = flag ?? env.PRESENCED_TOKEN
  return token === undefined || token === '' ? undefined : token
}

/**
 * Runs a command body and turns every failure into one clear line and an exit code:
 * 2 for bad usage or input the server refused as such (400, 413, 415), 1 for the rest
 * (unreachable server, refused credentials, server errors).
 */
export async function runClientCommand(name: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body()
  } catch (error) {
    const { message, code } = describeFailure(error)
    console.error(`presenced ${name}: ${message}`)
    return code
  }
}

export function describeFailure(error: unknown): { message: string; code: number } {
  if (error instanceof InvalidIdError && typeof error.value === 'string') {
    // the SDK quotes the value whole (JSON.stringify)
    const message = error.message.replace(JSON.stringify(error.value), echoed(error.value))
    return { message, code: EXIT.usage }
  }
  if (error instanceof UsageError || error instanceof InvalidIdError) {
    return { message: error.message, code: EXIT.usage }
  }
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
    return { message: (error as Error).message, code: EXIT.usage }
  }
  if (error instanceof PresencedError) {
    if (error.status === 0) return { message: error.message, code: EXIT.failure }
    const badInput = error.status === 400 || error.status === 413 || error.status === 415
    const hint =
      error.status === 401 ? ' (is the token valid for this server? see `presenced token`)' : ''
    return {
      message: `the server answered ${error.status}: ${error.message}${hint}`,
      code: badInput ? EXIT.usage : EXIT.failure,
    }
  }
  return { message: error instanceof Error ? error.message : String(error), code: EXIT.failure }
}

/** How long after a stop signal the same signal is taken for an echo of it (see untilStopped). */
const SIGNAL_ECHO_MS = 1000

/** When untilStopped saw its first signal (and whether its echo came since), if it did. */
let stopped: { at: number; echoed: () => void; echo: Promise<void> } | undefined

/**
 * Waits, after a stop signal, for its echo or the end of the echo window (see untilStopped). A
 * process ending by itself stops handling signals while Node tears it down, and an echo arriving
 * then (npx forwards its Ctrl-C, late on a busy machine) kills it with SIGINT: the command's 0
 * is lost and npx reports 130. Until the window ends the handler still takes it for the echo.
 */
export async function echoWindowPassed(): Promise<void> {
  if (stopped === undefined) return
  const left = stopped.at + SIGNAL_ECHO_MS - Date.now()
  if (left <= 0) return
  let timer: NodeJS.Timeout | undefined
  await Promise.race([stopped.echo, new Promise((resolve) => (timer = setTimeout(resolve, left)))])
  clearTimeout(timer)
}

/**
 * Resolves with the first SIGINT or SIGTERM, for commands that run until stopped. One Ctrl-C
 * often arrives twice: the terminal signals the whole process group, and npx, in that group,
 * forwards what it got to its child as well. A repeat within a second is that echo and is
 * ignored, so the command still stops cleanly (a heartbeat still disconnects); a later one is
 * the user insisting, and ends the process at once with 130.
 */
export function untilStopped(name: string): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let firstAt: number | undefined
    const onSignal = (signal: NodeJS.Signals) => {
      if (firstAt === undefined) {
        firstAt = Date.now()
        let echoed = () => {}
        const echo = new Promise<void>((resolve) => (echoed = resolve))
        stopped = { at: firstAt, echoed, echo }
        resolve(signal)
      } else if (Date.now() - firstAt < SIGNAL_ECHO_MS) {
        stopped?.echoed()
      } else {
        console.error(`presenced ${name}: ${signal} again: exiting without waiting`)
        process.exit(130)
      }
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}

/** The state's name as the enum spells it: Offline, Online, InGame, InStudio, Invisible. */
export function stateName(type: PresenceType): string {
  return PresenceType[type] ?? String(type)
}

/** A Presence as plain JSON for machines: ids stay strings, dates ISO-8601. */
export function presenceJson(p: Presence): Record<string, unknown> {
  return {
    userId: p.userId,
    type: p.type,
    state: stateName(p.type),
    lastLocation: p.lastLocation,
    placeId: p.place?.id ?? null,
    rootPlaceId: p.rootPlace?.id ?? null,
    universeId: p.universe?.id ?? null,
    gameId: p.job?.id ?? null,
    lastOnline: p.lastOnline.toISOString(),
  }
}

/** Where a user is, in a few words: "Crossroads (place 1818)". */
export function whereOf(p: Presence): string {
  if (p.type === PresenceType.Offline) return ''
  const place = p.place ? `place ${p.place.id}` : ''
  if (p.lastLocation && place) return `${p.lastLocation} (${place})`
  return p.lastLocation || place
}

/** When, for a table: ISO without milliseconds, or "never". */
export function whenOf(date: Date): string {
  return date.getTime() === 0 ? 'never' : date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** A plain text table, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}
