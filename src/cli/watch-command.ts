import { parseArgs } from 'node:util'
import {
  createClient,
  type Presence,
  type PresenceEvent,
  type WebSocketLike,
} from '@presenced/client'
import WebSocket from 'ws'
import { answerWithin } from './admin-http.js'
import {
  TIMEOUT_OPTION,
  UsageError,
  commandClientOptions,
  describeFailure,
  presenceJson,
  runClientCommand,
  serverUrl,
  stateName,
  tokenOf,
  untilStopped,
  whenOf,
  whereOf,
} from './client-command.js'

const USAGE = `Usage: presenced watch <user ids...> --token <token> [--json] [--sse]
                       [--url <server>] [--timeout <seconds>]

Shows the presence of users live: their current state, then one line per change, until Ctrl-C.
Reconnects by itself and resumes where it left off.

Options:
  --json           one JSON object per event (NDJSON), ids as strings
  --sse            use Server-Sent Events instead of a WebSocket
  --url <server>   default $PRESENCED_URL or http://127.0.0.1:8080
  --token <token>  watch as this user, whose view privacy decides (default $PRESENCED_TOKEN)
  --timeout <s>    give up (exit 1) when the stream has not opened and sent the users'
                   current state within s seconds; after that a quiet stream is normal (and
                   each reconnection must open within s); default: wait
  -h, --help       this help

Exit codes: 0 stopped with Ctrl-C or SIGTERM, 1 server or network error, 2 bad usage or input.
(npx runs commands through npm's script shell: with dash, as on Debian, the shell dies of the
Ctrl-C and npx reports 130 while presenced exits 0; this repository's .npmrc sets bash.)`

/** `presenced watch`: the SDK's subscribe, printed. */
export function runWatch(args: string[]): Promise<number> {
  return runClientCommand('watch', async () => {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        sse: { type: 'boolean' },
        url: { type: 'string' },
        token: { type: 'string' },
        ...TIMEOUT_OPTION,
        help: { type: 'boolean', short: 'h' },
      },
    })
    if (values.help) {
      console.log(USAGE)
      return 0
    }
    const ids = positionals.flatMap((p) => p.split(',')).filter((p) => p !== '')
    if (ids.length === 0) throw new UsageError(`give at least one user id\n\n${USAGE}`)
    const token = tokenOf(values.token)
    if (token === undefined) {
      throw new UsageError(
        `--token is required: the real-time API serves signed-in users\n\n${USAGE}`,
      )
    }
    const { retry, timeoutMs } = commandClientOptions(values.timeout)
    const sockets = new Set<WebSocket>()
    const client = createClient({
      baseUrl: serverUrl(values.url),
      token,
      // an event stream's body never ends: each attempt's headers (or upgrade) are bounded, and
      // the first snapshot below; not the stream
      fetch: answerWithin(timeoutMs),
      retry,
      WebSocket: trackedWebSocket(sockets, timeoutMs),
    })
    const subscription = client.subscribe(ids, { transport: values.sse ? 'sse' : 'websocket' })
    const print = values.json ? (e: PresenceEvent) => console.log(jsonLine(e)) : printEvent
    subscription.on('event', print)
    let opened = false
    subscription.on('open', () => (opened = true))
    let firstState: NodeJS.Timeout | undefined
    const outcome = await new Promise<{ signal: string } | { error: unknown }>((resolve) => {
      if (timeoutMs !== undefined) {
        // a server that opens the stream and then says nothing would hold watch for ever
        firstState = setTimeout(
          () => resolve({ error: new Error(`no answer within ${timeoutMs / 1000} s (--timeout)`) }),
          timeoutMs,
        )
        subscription.once('snapshot', () => clearTimeout(firstState))
      }
      subscription.on('error', (error) => resolve({ error }))
      subscription.on('reconnecting', ({ delayMs, error }) => {
        // a server that was never reached is a mistake to report, not an outage to ride out
        if (!opened) return resolve({ error })
        const reason = describeFailure(error).message
        console.error(`presenced watch: connection lost (${reason}); retrying in ${delayMs} ms`)
      })
      void untilStopped('watch').then((signal) => resolve({ signal }))
    })
    clearTimeout(firstState)
    subscription.close()
    if ('error' in outcome) {
      // a server that says nothing will not answer the close either: ws would wait 30 s for it
      for (const socket of sockets) socket.terminate()
      throw outcome.error
    }
    return 0
  })
}

/**
 * `ws`, each socket kept in `sockets` while it lives (so a failing command can drop them at
 * once), giving up on an upgrade not answered within `timeoutMs` (its handshakeTimeout).
 */
function trackedWebSocket(sockets: Set<WebSocket>, timeoutMs: number | undefined): WebSocketLike {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[], options?: WebSocket.ClientOptions) {
      super(url, protocols, {
        ...options,
        ...(timeoutMs !== undefined && { handshakeTimeout: timeoutMs }),
      })
      sockets.add(this)
      this.once('close', () => sockets.delete(this))
    }
  }
}

function jsonLine(event: PresenceEvent): string {
  if (event.type === 'snapshot') {
    return JSON.stringify({ ...event, presences: event.presences.map(presenceJson) })
  }
  return JSON.stringify({ ...event, presence: presenceJson(event.presence) })
}

function printEvent(event: PresenceEvent): void {
  const time = new Date().toISOString().slice(11, 19)
  if (event.type === 'snapshot') {
    for (const p of event.presences)
      console.log(`${time}  ${event.reset ? 'reset ' : 'now   '}  ${describe(p)}`)
    return
  }
  const reason = event.type === 'offline' ? `  (${event.reason})` : ''
  console.log(`${time}  ${event.type.padEnd(7)} ${describe(event.presence)}${reason}`)
}

function describe(p: Presence): string {
  const where = whereOf(p)
  const state = stateName(p.type)
  const last = p.type === 0 ? `  last online ${whenOf(p.lastOnline)}` : ''
  return `${p.userId.padEnd(12)} ${state.padEnd(8)}${where ? ' ' + where : ''}${last}`
}
