import { parseArgs } from 'node:util'
import { createClient } from '@presenced/client'
import { echoed } from './admin-http.js'
import {
  EXIT,
  TIMEOUT_OPTION,
  UsageError,
  commandClientOptions,
  describeFailure,
  runClientCommand,
  serverUrl,
  tokenOf,
  untilStopped,
} from './client-command.js'

const USAGE = `Usage: presenced heartbeat --token <token> [--place <id>] [--location <text>] [--game <uuid>]
                           [--platform <name>] [--url <server>] [--timeout <seconds>]

Keeps a user online until Ctrl-C, beating at the interval the server asks for; on Ctrl-C (or
SIGTERM) it disconnects, so watchers see the user leave at once. Stopped before the server
answered the first beat, it gives the disconnect 3 s (exit 1 when unanswered).

Options:
  --token <token>    whose presence (default $PRESENCED_TOKEN); get one with 'presenced token'
  --place <id>       the place the user is in: the user shows InGame
  --location <text>  free text shown as lastLocation; 'Studio' shows InStudio
  --game <uuid>      the game server instance
  --platform <name>  the device (default: derived by the server)
  --url <server>     default $PRESENCED_URL or http://127.0.0.1:8080
  --timeout <s>      give up (exit 1) when the server has not answered a request in full
                     (headers and body) within s seconds (each beat and the disconnect);
                     default: wait
  -h, --help         this help

Exit codes: 0 stopped cleanly, 1 server or network error, 2 bad usage or input.`

/** `presenced heartbeat`: the SDK's keepAlive until a signal. */
export function runHeartbeat(args: string[]): Promise<number> {
  return runClientCommand('heartbeat', async () => {
    const { values } = parseArgs({
      args,
      options: {
        token: { type: 'string' },
        place: { type: 'string' },
        location: { type: 'string' },
        game: { type: 'string' },
        platform: { type: 'string' },
        url: { type: 'string' },
        ...TIMEOUT_OPTION,
        help: { type: 'boolean', short: 'h' },
      },
    })
    if (values.help) {
      console.log(USAGE)
      return 0
    }
    const token = tokenOf(values.token)
    if (token === undefined) throw new UsageError(`--token is required\n\n${USAGE}`)
    if (values.place !== undefined && !/^[1-9]\d{0,18}$/.test(values.place)) {
      throw new UsageError(`--place must be a positive 64-bit integer, got ${echoed(values.place)}`)
    }
    const { fetch, retry } = commandClientOptions(values.timeout)
    // the requests under way, so that a stop before the first answer can abandon them
    let pending = new AbortController()
    const abandonPending = () => {
      pending.abort(new Error('stopped'))
      pending = new AbortController()
    }
    // --timeout bounds each exchange (fetch); without it the command waits, as it says
    const client = createClient({
      baseUrl: serverUrl(values.url),
      token,
      fetch: (input, init) =>
        fetch(input, {
          ...init,
          signal: init?.signal ? AbortSignal.any([init.signal, pending.signal]) : pending.signal,
        }),
      retry,
      timeoutMs: false,
    })
    let started = false
    const alive = client.keepAlive({
      ...(values.place !== undefined && { placeId: values.place }),
      ...(values.location !== undefined && { location: values.location }),
      ...(values.game !== undefined && { gameId: values.game }),
      ...(values.platform !== undefined && { platform: values.platform }),
      onError: (error) => {
        // the first failure is reported once, as the command's own error
        if (!started) return
        console.error(`presenced heartbeat: beat failed: ${describeFailure(error).message}`)
      },
    })
    const stopped = untilStopped('heartbeat')
    const first = await Promise.race([
      alive.ready.then(
        () => undefined,
        (error: unknown) => ({ error }),
      ),
      stopped.then((signal) => ({ signal })),
    ])
    if (first !== undefined && 'signal' in first) {
      // stopped before the server answered the first beat: that beat is abandoned (stop() would
      // wait for it, and a server that never answers would hold the command until a second
      // signal killed it), then the disconnect is tried for a while, as the beat may have landed
      abandonPending()
      const disconnected = await Promise.race([
        alive.stop().then(
          () => true,
          () => false,
        ),
        new Promise<false>((resolve) => setTimeout(resolve, STOP_DISCONNECT_MS, false).unref()),
      ])
      abandonPending()
      if (disconnected) {
        console.log(
          `${first.signal}: stopped before the server answered the first beat; disconnected`,
        )
        return 0
      }
      console.error(
        `presenced heartbeat: ${first.signal}: stopped before the server answered the first beat; ` +
          `it did not answer the disconnect within ${STOP_DISCONNECT_MS / 1000} s either`,
      )
      return EXIT.failure
    }
    if (first !== undefined) {
      // the loop keeps trying after a transient failure; a first failure ends the command
      await alive.stop().catch(() => {})
      throw first.error
    }
    started = true
    console.log(
      `online; beating every ${Math.round(alive.beatEveryMs / 1000)} s (Ctrl-C to disconnect)`,
    )
    // a loop ended by a refused beat holds nothing open: without waiting on `ended` too, Node
    // would exit 0 the moment it ended, as if stopped cleanly
    const signal = await Promise.race([stopped, alive.ended.then(noSignal, noSignal)])
    if (signal === undefined) {
      // onError has printed the refusal itself
      console.error(
        'presenced heartbeat: stopped: the server refuses the beats, retrying cannot help',
      )
      return EXIT.failure
    }
    await alive.stop()
    console.log(`${signal}: disconnected`)
    return 0
  })
}

const noSignal = (): undefined => undefined

/** How long a stop before the first answer waits for the disconnect it sends. */
const STOP_DISCONNECT_MS = 3000
